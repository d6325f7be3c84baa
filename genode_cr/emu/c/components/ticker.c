/* Several threads: a signal handler woken by periodic timer signals, an
 * entrypoint serving RPC, and a client that calls the entrypoint. The handler
 * has the runtime check its Timer session now and then (timer_check: ask the
 * parent for it again; base-foc looks the returned badge up in our capability
 * map, so after a move whose restore left stale badges the answer lands in
 * another slot and the check fails). The client's sleeps check its own timer
 * the same way. */
#include <genode/runtime.h>

#define TICK_US          50000
#define CHECK_EVERY      20
#define CLIENT_PERIOD_MS 500
#define OP_GET_TICKS     1

static struct thread handler_thread, ep_thread, client_thread;
static struct signal_receiver tick_receiver, client_receiver;
static struct timer tick_timer, client_timer;
static struct entrypoint ep;
static volatile unsigned ticks;
static volatile unsigned ep_ready;

static void handler(struct thread *self)
{
	if (signal_receiver_init(&tick_receiver, self->cap)
	    || timer_connect(&tick_timer, 20, &tick_receiver, 7)) {
		log("Error: ticker: no tick timer");
		return;
	}
	timer_trigger_periodic(&tick_timer, TICK_US);
	for (;;) {
		unsigned imprint, count;
		unsigned err = signal_wait(&tick_receiver, &imprint, &count);
		if (err) {
			log("Error: ticker: signal receive failed (err %u), stopping", err);
			return;
		}
		if (imprint != 7) continue;
		ticks += count;
		if (ticks % 10 == 0 || count > 1)
			log("tick %u", ticks);
		if (ticks % CHECK_EVERY == 0) {
			if (timer_check(&tick_timer)) {
				log("Error: ticker: tick timer check failed, stopping");
				return;
			}
			log("badge check ok (slot %x badge %u)", tick_timer.session >> CAP_SHIFT,
			    cap_badge(tick_timer.session));
		}
	}
}

static unsigned dispatch(unsigned opcode, unsigned arg, unsigned *result)
{
	(void)arg;
	if (opcode != OP_GET_TICKS) return E_INVALID_OPCODE;
	*result = ticks;
	return E_OK;
}

static void serve(struct thread *self)
{
	if (entrypoint_manage(&ep, self->cap, dispatch)) {
		log("Error: ticker: no rpc cap");
		return;
	}
	ep_ready = 1;
	entrypoint_serve(&ep);
}

static void client(struct thread *self)
{
	if (signal_receiver_init(&client_receiver, self->cap)
	    || timer_connect(&client_timer, 21, &client_receiver, 9)) {
		log("Error: ticker: no client timer");
		return;
	}
	for (;;) {
		if (timer_msleep(&client_timer, CLIENT_PERIOD_MS)) {
			log("Error: ticker: client timer failed, stopping");
			return;
		}
		if (!ep_ready) continue;
		struct rpc_result r = rpc_call(ep.object, OP_GET_TICKS, 0, 0, 0, 0, 0);
		if (r.err) {
			log("Error: ticker: entrypoint call failed (err %u), stopping", r.err);
			return;
		}
		log("entrypoint answered ticks %u", r.r1);
	}
}

void component_main(void)
{
	log("ticker started");
	if (thread_create(&ep_thread, "ep", serve, 0)
	    || thread_create(&handler_thread, "signal handler", handler, 0)
	    || thread_create(&client_thread, "client", client, 0)) {
		log("Error: ticker: thread creation failed");
		return;
	}
	/* The main thread has nothing more to do; Genode's would return to the
	 * entrypoint, ours parks itself. */
	for (;;) {
		unsigned imprint, count;
		struct signal_receiver idle;
		if (signal_receiver_init(&idle, env.main_thread)) return;
		signal_wait(&idle, &imprint, &count);
	}
}
