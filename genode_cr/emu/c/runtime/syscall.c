/* System-call stubs. Every blocking call is restartable: the kernel rewinds
 * the pc to the svc while a thread waits, so the registers holding the
 * arguments must still hold them when the thread resumes. */
#include <genode/runtime.h>

cap_t cap_receive_slot(void);
cap_t cap_accept(cap_t slot, unsigned badge);
void  cap_release_slot(cap_t slot);

struct rpc_result rpc_call(cap_t dst, unsigned op, unsigned a, unsigned b,
                           unsigned c, unsigned d, int receive_cap)
{
	cap_t slot = receive_cap ? cap_receive_slot() : 0;
	register unsigned r0 asm("r0") = dst;
	register unsigned r1 asm("r1") = op;
	register unsigned r2 asm("r2") = a;
	register unsigned r3 asm("r3") = b;
	register unsigned r4 asm("r4") = c;
	register unsigned r5 asm("r5") = d;
	register unsigned r6 asm("r6") = slot;
	register unsigned r7 asm("r7") = SYS_CALL;
	asm volatile("svc #0"
	             : "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r3), "+r"(r4), "+r"(r5)
	             : "r"(r6), "r"(r7) : "memory");
	/* Until cap_accept has put it in the map, a received badge (r4) lives
	 * only in registers: the kernel counts this thread "in hand-off", and the
	 * CR component settles it to its next kernel entry before a checkpoint. */
	struct rpc_result res = { r0, r1, r2, r3, 0 };
	if (receive_cap) {
		if (r0 == E_OK)
			res.cap = cap_accept(slot, r4);
		else
			cap_release_slot(slot);
	}
	return res;
}

unsigned sys_irq_receive(cap_t irq)
{
	register unsigned r0 asm("r0") = irq;
	register unsigned r7 asm("r7") = SYS_IRQ_RECEIVE;
	asm volatile("svc #0" : "+r"(r0) : "r"(r7) : "memory");
	return r0;
}

unsigned sys_irq_attach(cap_t irq, cap_t thread)
{
	register unsigned r0 asm("r0") = irq;
	register unsigned r1 asm("r1") = thread;
	register unsigned r7 asm("r7") = SYS_IRQ_ATTACH;
	asm volatile("svc #0" : "+r"(r0) : "r"(r1), "r"(r7) : "memory");
	return r0;
}

void sys_yield(void)
{
	register unsigned r7 asm("r7") = SYS_YIELD;
	asm volatile("svc #0" : : "r"(r7) : "memory");
}
