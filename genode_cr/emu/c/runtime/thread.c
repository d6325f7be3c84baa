/* Threads and the entrypoint. Stacks are RAM dataspaces attached in the
 * stack area, one slot per thread, as Genode's Thread does. */
#include <genode/runtime.h>

extern void _thread_entry(void);
static unsigned next_stack_slot = 1;   /* slot 0 is the main thread's */

unsigned thread_create(struct thread *t, const char *name,
                       void (*entry)(struct thread *), void *arg)
{
	unsigned err;
	unsigned i;
	for (i = 0; name[i] && i < sizeof(t->name) - 1; i++) t->name[i] = name[i];
	t->name[i] = 0;
	t->entry = entry;
	t->arg = arg;

	cap_t ds = pd_alloc(STACK_SIZE, &err);
	if (err) return err;
	/* Any thread may create threads: take the slot atomically (ldrex/strex). */
	unsigned slot = __atomic_fetch_add(&next_stack_slot, 1, __ATOMIC_RELAXED);
	unsigned offset = slot * STACK_SLOT_SIZE;
	rm_attach(env.stack_area, ds, offset, ATTACH_WRITABLE | ATTACH_USE_LOCAL_ADDR, &err);
	if (err) return err;
	t->stack_top = STACK_AREA_BASE + offset + STACK_SIZE;

	struct rpc_result r = rpc_call(env.cpu, CPU_CREATE_THREAD, env.pd,
	                               (unsigned)t->name, 0, 0, 1);
	if (r.err) return r.err;
	t->cap = r.cap;
	return rpc_call(t->cap, THREAD_START, (unsigned)_thread_entry, t->stack_top,
	                (unsigned)t, 0, 0).err;
}

void _thread_main(struct thread *t)
{
	t->entry(t);
}

unsigned entrypoint_manage(struct entrypoint *ep, cap_t thread, rpc_handler handler)
{
	struct rpc_result r = rpc_call(env.pd, PD_ALLOC_RPC_CAP, thread, 0, 0, 0, 1);
	if (r.err) return r.err;
	ep->thread = thread;
	ep->object = r.cap;
	ep->handler = handler;
	return E_OK;
}

/* Incoming calls carry the badge of the invoked object; like Genode's object
 * pool we find the object through our capability map, so stale badges there
 * make every call miss. */
void entrypoint_serve(struct entrypoint *ep)
{
	unsigned has_reply = 0, reply_err = 0, reply_word = 0;
	for (;;) {
		register unsigned r0 asm("r0") = has_reply;
		register unsigned r1 asm("r1") = reply_err;
		register unsigned r2 asm("r2") = reply_word;
		register unsigned r3 asm("r3") = 0;
		register unsigned r4 asm("r4");
		register unsigned r5 asm("r5");
		register unsigned r7 asm("r7") = SYS_REPLY_WAIT;
		asm volatile("svc #0"
		             : "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r3), "=r"(r4), "=r"(r5)
		             : "r"(r7) : "memory");
		if (r0 != E_OK) { has_reply = 0; continue; }
		unsigned label = r1, opcode = r2, arg = r3;
		has_reply = 1;
		reply_word = 0;
		if (cap_lookup_badge(label) != ep->object) {
			log("Error: entrypoint: call to unknown object (badge %u)", label);
			reply_err = E_INVALID_CAP;
			continue;
		}
		reply_err = ep->handler(opcode, arg, &reply_word);
	}
}
