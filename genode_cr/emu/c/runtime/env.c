/* Start-up and the environment sessions, requested from the parent. */
#include <genode/runtime.h>

void cap_map_insert(cap_t cap, unsigned badge);

/* Written by the parent's ELF loader before the first instruction runs
 * (Genode writes the raw parent capability at the start of the first RW
 * segment). A restore does not load the ELF, so the value found here after a
 * restore is whatever was checkpointed. */
struct raw_cap { unsigned kcap, badge; };
__attribute__((section(".parent_cap"), used))
volatile struct raw_cap _parent_cap = { 0, 0 };

struct env env;

cap_t parent_session(unsigned id, const char *service, const char *args)
{
	struct rpc_result r = rpc_call(env.parent, PARENT_SESSION, id,
	                               (unsigned)service, (unsigned)args, 0, 1);
	return r.err == E_OK ? r.cap : 0;
}

void parent_exit(unsigned code)
{
	rpc_call(env.parent, PARENT_EXIT, code, 0, 0, 0, 0);
	for (;;) sys_yield();
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
	env.parent = CAP_PARENT_INDEX << CAP_SHIFT;
	env.main_thread = CAP_MAIN_THREAD_INDEX << CAP_SHIFT;
	cap_map_insert(env.parent, _parent_cap.badge);
	cap_map_insert(env.main_thread, main_thread_badge);

	rpc_call(env.parent, PARENT_ANNOUNCE_CAP_MAP, (unsigned)&cap_map,
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
