/* Divides a great deal. The ROMs are ARM code, but division goes through
 * libgcc's helpers (__aeabi_uidivmod, __aeabi_idivmod), which on armhf are
 * Thumb-2: a thread preempted there must resume in the Thumb state, in place
 * and after a restore. (64-bit division is left out: libgcc's __udivmoddi4 is
 * built for the hard-float ABI, which our soft-float ROMs cannot link with.)
 * Every result is checked (quotient * divisor + remainder == dividend,
 * remainder in range), and a running checksum of all results is logged after
 * each batch, so a run that resumed wrongly faults, logs an error, or logs
 * other checksums than an undisturbed run. The sleep between batches blocks
 * at an svc in Thumb code (2 bytes, not 4), which the kernel must rewind and
 * complete in that instruction set. Runs are deterministic: the same settings
 * give the same log lines on any board and at any time-slice length.
 *
 * Settings (config ROM, see runtime.h):
 *   seed=0x2545f491   start value of the xorshift32 generator (not 0)
 *   batch=200         divisions of each kind per batch
 *   period_ms=10      sleep after each batch (0: none)
 *   batches=0         stop after this many batches (0: never)
 *
 * Log lines:
 *   divider started seed S batch B period_ms P batches N
 *   batch N checksum C
 *   divider done batches N checksum C
 */
#include <genode/runtime.h>

#define DEFAULT_SEED 0x2545f491

#define TIMER_IMPRINT 1

static unsigned rng;
static unsigned checksum;
static unsigned slept_ms;
static struct signal_receiver receiver;
static struct timer timer;

static unsigned next_random(void)
{
	rng ^= rng << 13; rng ^= rng >> 17; rng ^= rng << 5;
	return rng;
}

static unsigned setting(const char *key, unsigned dflt, unsigned min, unsigned max)
{
	return config_uint("divider", key, dflt, min, max);
}

static void mix(unsigned value)
{
	checksum = (checksum ^ value) * 0x01000193;
}

/* The empty asm statements hide each quotient from the optimiser, so the
 * checks below test what the helper returned instead of being folded away. */
static int divide_unsigned(void)
{
	unsigned x = next_random();
	unsigned y = next_random() >> (x & 31);
	if (!y) y = 7;
	unsigned q = x / y, r = x % y;
	asm volatile("" : "+r"(q), "+r"(r));
	if (r >= y || q * y + r != x) {
		log("Error: divider: %u / %u gave %u rem %u", x, y, q, r);
		return 0;
	}
	mix(q); mix(r);
	return 1;
}

static int divide_signed(void)
{
	int x = (int)next_random();
	int y = (int)(next_random() >> ((unsigned)x & 15));
	if (!y) y = 3;
	if ((unsigned)x & 0x100) y = -y;
	int q = x / y, r = x % y;
	asm volatile("" : "+r"(q), "+r"(r));
	unsigned ry = y < 0 ? (unsigned)-y : (unsigned)y;
	unsigned rr = r < 0 ? (unsigned)-r : (unsigned)r;
	if (rr >= ry || (r && (r < 0) != (x < 0)) || (unsigned)q * (unsigned)y + (unsigned)r != (unsigned)x) {
		log("Error: divider: %d / %d gave %d rem %d", x, y, q, r);
		return 0;
	}
	mix((unsigned)q); mix((unsigned)r);
	return 1;
}

/* sys_irq_receive in Thumb code, written out so that the instruction before
 * the svc counts: a restart that began there (a rewind by 4 bytes instead of
 * 2) would count twice, and the call then fails with E_THUMB_RESTART. */
#define E_THUMB_RESTART 0xff
#define STR_(x) #x
#define STR(x) STR_(x)
unsigned thumb_irq_receive(cap_t irq);
asm(".pushsection .text.thumb_irq_receive, \"ax\", %progbits\n"
    ".syntax unified\n"
    ".thumb\n"
    ".global thumb_irq_receive\n"
    ".type thumb_irq_receive, %function\n"
    ".thumb_func\n"
    "thumb_irq_receive:\n"
    "	push {r7}\n"
    "	movs r7, #" STR(SYS_IRQ_RECEIVE) "\n"
    "	movs r2, #0\n"
    "	adds r2, #1\n"
    "	svc #0\n"
    "	pop {r7}\n"
    "	cmp r2, #1\n"
    "	it ne\n"
    "	movne r0, #" STR(E_THUMB_RESTART) "\n"
    "	bx lr\n"
    ".size thumb_irq_receive, . - thumb_irq_receive\n"
    ".arm\n"
    ".popsection\n");

/* timer_msleep, but blocking in Thumb code (see signal.c for the original). */
static unsigned sleep_ms(unsigned ms)
{
	rpc_call(timer.session, TIMER_TRIGGER_ONCE, ms * 1000, 0, 0, 0, 0);
	for (;;) {
		struct rpc_result r = rpc_call(receiver.source, SIGSRC_WAIT_FOR_SIGNAL, 0, 0, 0, 0, 0);
		if (r.err == E_OK) {
			if (r.r1 == TIMER_IMPRINT) break;
			continue;
		}
		if (r.err != E_NO_SIGNAL) return r.err;
		unsigned err = thumb_irq_receive(receiver.semaphore);
		if (err) return err;
	}
	slept_ms += ms;
	if (slept_ms < TIMER_CHECK_MS)
		return E_OK;
	slept_ms = 0;
	return timer_check(&timer);
}

void component_main(void)
{
	rng = setting("seed", DEFAULT_SEED, 1, 0x7fffffff);
	unsigned batch = setting("batch", 200, 1, 100000);
	unsigned period_ms = setting("period_ms", 10, 0, 60000);
	unsigned batches = setting("batches", 0, 0, 0x7fffffff);
	checksum = 0x811c9dc5;
	if (period_ms && (signal_receiver_init(&receiver, env.main_thread)
	                  || timer_connect(&timer, 10, &receiver, TIMER_IMPRINT))) {
		log("Error: divider: no timer");
		return;
	}
	log("divider started seed %u batch %u period_ms %u batches %u", rng, batch, period_ms,
	    batches);
	for (unsigned n = 1; !batches || n <= batches; n++) {
		for (unsigned i = 0; i < batch; i++)
			if (!divide_unsigned() || !divide_signed())
				return;
		log("batch %u checksum %08x", n, checksum);
		if (period_ms && sleep_ms(period_ms)) {
			log("Error: divider: timer wait failed");
			return;
		}
	}
	log("divider done batches %u checksum %08x", batches, checksum);
}
