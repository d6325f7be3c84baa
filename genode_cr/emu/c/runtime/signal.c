/* Signals as base-foc delivers them: core's signal source owns a kernel IRQ
 * (the "semaphore"); the client attaches it to its signal-handler thread and
 * blocks on it, then fetches the signal from the source. The attachment is
 * kernel state that no checkpoint of memory contains. */
#include <genode/runtime.h>

unsigned signal_receiver_init(struct signal_receiver *sr, cap_t thread)
{
	struct rpc_result r = rpc_call(env.pd, PD_ALLOC_SIGNAL_SOURCE, 0, 0, 0, 0, 1);
	if (r.err) return r.err;
	sr->source = r.cap;
	r = rpc_call(sr->source, SIGSRC_REQUEST_SEMAPHORE, 0, 0, 0, 0, 1);
	if (r.err) return r.err;
	sr->semaphore = r.cap;
	sr->thread = thread;
	return sys_irq_attach(sr->semaphore, thread);
}

cap_t signal_context(struct signal_receiver *sr, unsigned imprint)
{
	return rpc_call(env.pd, PD_ALLOC_CONTEXT, sr->source, imprint, 0, 0, 1).cap;
}

unsigned signal_wait(struct signal_receiver *sr, unsigned *imprint, unsigned *count)
{
	for (;;) {
		struct rpc_result r = rpc_call(sr->source, SIGSRC_WAIT_FOR_SIGNAL, 0, 0, 0, 0, 0);
		if (r.err == E_OK) {
			*imprint = r.r1;
			*count = r.r2;
			return E_OK;
		}
		if (r.err != E_NO_SIGNAL)
			return r.err;
		unsigned err = sys_irq_receive(sr->semaphore);
		if (err) return err;
	}
}

/* Genode components keep calling their parent after start-up (session
 * upgrades, more sessions, exit). Ours ask it for their Timer session again
 * about once a second of sleep (TIMER_CHECK_MS): asking for an open session
 * yields the capability we already hold, and base-foc's receive path finds
 * its badge in our capability map, so the answer must come back at the slot
 * we hold it in. After a restore that left another board's badges in the
 * map, or a raw parent capability that disagrees with it, it does not, and
 * the timer stops working instead of the component limping on. */
unsigned timer_check(struct timer *t)
{
	cap_t again = parent_session(t->id, "Timer", "");
	if (!again) {
		log("Error: timer: asking the parent for Timer session %u again failed", t->id);
		return E_SERVICE_DENIED;
	}
	if (again != t->session) {
		log("Error: timer: badge check failed: Timer session %u (badge %u) is not in our "
		    "capability map at slot %x, where we hold it (got slot %x)",
		    t->id, cap_badge(again), t->session >> CAP_SHIFT, again >> CAP_SHIFT);
		return E_INVALID_CAP;
	}
	return E_OK;
}

unsigned timer_connect(struct timer *t, unsigned id, struct signal_receiver *sr,
                       unsigned imprint)
{
	t->id = id;
	t->slept_ms = 0;
	t->session = parent_session(id, "Timer", "");
	if (!t->session) return E_SERVICE_DENIED;
	t->sr = sr;
	t->imprint = imprint;
	t->context = signal_context(sr, imprint);
	if (!t->context) return E_OUT_OF_CAPS;
	return rpc_call(t->session, TIMER_SIGH, t->context, 0, 0, 0, 0).err;
}

/* Waits for the timer's own signal; other signals of the same receiver that
 * arrive meanwhile are dropped, which suits the single-purpose receivers the
 * components use. */
unsigned timer_msleep(struct timer *t, unsigned ms)
{
	rpc_call(t->session, TIMER_TRIGGER_ONCE, ms * 1000, 0, 0, 0, 0);
	for (;;) {
		unsigned imprint, count;
		unsigned err = signal_wait(t->sr, &imprint, &count);
		if (err) return err;
		if (imprint == t->imprint) break;
	}
	t->slept_ms += ms;
	if (t->slept_ms < TIMER_CHECK_MS)
		return E_OK;
	t->slept_ms = 0;
	return timer_check(t);
}

void timer_trigger_periodic(struct timer *t, unsigned us)
{
	rpc_call(t->session, TIMER_TRIGGER_PERIODIC, us, 0, 0, 0, 0);
}

unsigned timer_elapsed_ms(struct timer *t)
{
	return rpc_call(t->session, TIMER_ELAPSED_MS, 0, 0, 0, 0, 0).r1;
}
