/* The demo component: counts at a steady rate and logs every number. */
#include <genode/runtime.h>

#define PERIOD_MS 200

static unsigned count;
static struct signal_receiver receiver;
static struct timer timer;

void component_main(void)
{
	if (signal_receiver_init(&receiver, env.main_thread)
	    || timer_connect(&timer, 10, &receiver, 1)) {
		log("Error: counter: no timer");
		return;
	}
	log("counter started");
	for (;;) {
		unsigned err = timer_msleep(&timer, PERIOD_MS);
		if (err) {
			log("Error: counter: timer wait failed (%u)", err);
			return;
		}
		count++;
		log("count %u elapsed_ms %u", count, timer_elapsed_ms(&timer));
	}
}
