/* Start-up, the environment sessions, and the parent capability. */
#include <genode/runtime.h>

void cap_map_insert(cap_t cap, unsigned badge);

/* Written by the parent's ELF loader before the first instruction runs
 * (Genode writes the raw parent capability at the start of the first RW
 * segment). A restore does not load the ELF, so the value found here after a
 * restore is whatever was checkpointed, unless the restorer rewrote it. */
struct raw_cap { unsigned kcap, badge; };
__attribute__((section(".parent_cap"), used))
volatile struct raw_cap _parent_cap = { 0, 0 };

struct env env;

#define PARENT_KCAP (CAP_PARENT_INDEX << CAP_SHIFT)

/* base-foc's parent_cap(): the parent capability is derived from the raw
 * one on every use, through the capability map entry at PARENT_CAP that
 * start-up inserted with the raw badge. Genode re-inserts that entry when the
 * raw value was reloaded on purpose; nothing reloads ours, so raw value and
 * map entry disagree only after a restore that translated one of them and
 * not the other. We say so and leave the parent unreachable (selector 0),
 * rather than carry on with a parent capability nobody vouches for. */
static cap_t parent_cap(void)
{
	for (;;) {
		unsigned kcap = _parent_cap.kcap, badge = _parent_cap.badge;
		unsigned held = cap_badge(PARENT_KCAP);
		if (kcap == PARENT_KCAP && badge == held)
			return PARENT_KCAP;
		/* A checkpoint may fall between our reads and its restore rewrite
		 * both values: only a disagreement that a second look confirms is
		 * real. */
		if (_parent_cap.kcap == kcap && _parent_cap.badge == badge
		    && cap_badge(PARENT_KCAP) == held) {
			log("Error: parent capability: the raw one {kcap %x, badge %u} disagrees with "
			    "our capability map (badge %u at slot %x), the parent is unreachable",
			    kcap, badge, held, CAP_PARENT_INDEX);
			return 0;
		}
	}
}

cap_t parent_session(unsigned id, const char *service, const char *args)
{
	struct rpc_result r = rpc_call(parent_cap(), PARENT_SESSION, id,
	                               (unsigned)service, (unsigned)args, 0, 1);
	return r.err == E_OK ? r.cap : 0;
}

/* Does not return. When the parent cannot be told, the calling thread ends
 * itself: Genode's would block forever, and a thread that spun here would
 * keep the board's CPU busy. */
void parent_exit(unsigned code)
{
	rpc_call(parent_cap(), PARENT_EXIT, code, 0, 0, 0, 0);
	for (;;) {
		register unsigned r7 asm("r7") = SYS_THREAD_EXIT;
		asm volatile("svc #0" : : "r"(r7) : "memory");
	}
}

cap_t pd_alloc(size_t size, unsigned *err)
{
	struct rpc_result r = rpc_call(env.pd, PD_ALLOC, size, 0, 0, 0, 1);
	*err = r.err;
	return r.cap;
}

unsigned rm_attach(cap_t region_map, cap_t ds, unsigned local_addr, unsigned flags,
                   unsigned *err)
{
	struct rpc_result r = rpc_call(region_map, RM_ATTACH, ds, local_addr, flags, 0, 0);
	*err = r.err;
	return r.r1;
}

void _main(unsigned main_thread_badge)
{
	/* Genode's first parent_cap() call: cap_map().insert(raw badge, PARENT_CAP). */
	cap_map_insert(PARENT_KCAP, _parent_cap.badge);
	env.parent = PARENT_KCAP;
	env.main_thread = CAP_MAIN_THREAD_INDEX << CAP_SHIFT;
	cap_map_insert(env.main_thread, main_thread_badge);

	rpc_call(parent_cap(), PARENT_ANNOUNCE_CAP_MAP, (unsigned)&cap_map,
	         CAP_MAP_ENTRIES, 0, 0, 0);

	env.pd  = parent_session(SESSION_ID_PD, "PD", "");
	env.cpu = parent_session(SESSION_ID_CPU, "CPU", "");
	env.log = parent_session(SESSION_ID_LOG, "LOG", "label=\"\"");
	if (!env.pd || !env.cpu || !env.log)
		parent_exit(1);
	env.address_space = rpc_call(env.pd, PD_ADDRESS_SPACE, 0, 0, 0, 0, 1).cap;
	env.stack_area    = rpc_call(env.pd, PD_STACK_AREA, 0, 0, 0, 0, 1).cap;

	component_main();
	parent_exit(0);
}
