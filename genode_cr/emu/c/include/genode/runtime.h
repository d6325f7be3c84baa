/*
 * The component runtime: what a component of the emulated board links with.
 * Names follow Genode's base API where one exists.
 */
#ifndef GENODE_RUNTIME_H
#define GENODE_RUNTIME_H

#include <genode/abi.h>

typedef unsigned long size_t;
typedef unsigned int uint32_t;
typedef unsigned short uint16_t;
typedef unsigned char uint8_t;
typedef unsigned int cap_t;   /* a capability selector: slot index << 12 */

/* --- system calls and RPC --------------------------------------------- */
struct rpc_result { unsigned err, r1, r2, r3; cap_t cap; };

struct rpc_result rpc_call(cap_t dst, unsigned op, unsigned a, unsigned b,
                           unsigned c, unsigned d, int receive_cap);
unsigned sys_irq_receive(cap_t irq);
unsigned sys_irq_attach(cap_t irq, cap_t thread);
void sys_yield(void);

/* --- capability map (base-foc's Cap_index array in our own memory) ----- */
struct cap_index { uint32_t next; uint8_t ref; uint8_t flags; uint16_t badge; };
struct cap_map { uint32_t magic; uint32_t entries; struct cap_index idx[CAP_MAP_ENTRIES]; };
extern struct cap_map cap_map;

cap_t cap_lookup_badge(unsigned badge);
unsigned cap_badge(cap_t cap);

/* --- environment ------------------------------------------------------ */
struct env {
	cap_t parent, pd, cpu, log, address_space, stack_area;
	cap_t main_thread;
};
extern struct env env;

/* Every parent call goes through the parent capability as base-foc derives
 * it: the raw {kcap, badge} the loader wrote, checked against our capability
 * map; when they disagree the call fails after an error line (env.c). */
cap_t parent_session(unsigned id, const char *service, const char *args);
void  parent_exit(unsigned code);   /* does not return */

/* --- memory ----------------------------------------------------------- */
cap_t pd_alloc(size_t size, unsigned *err);
unsigned rm_attach(cap_t region_map, cap_t ds, unsigned local_addr, unsigned flags,
                   unsigned *err);
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);

/* --- LOG --------------------------------------------------------------- */
void log(const char *fmt, ...);   /* %u %d %x %08x %s, one line per call */

/* --- signals ----------------------------------------------------------- */
struct signal_receiver { cap_t source, semaphore, thread; };
unsigned signal_receiver_init(struct signal_receiver *sr, cap_t thread);
cap_t signal_context(struct signal_receiver *sr, unsigned imprint);
/* Blocks until a signal arrives; returns E_OK or the kernel's error. */
unsigned signal_wait(struct signal_receiver *sr, unsigned *imprint, unsigned *count);

/* --- timer ------------------------------------------------------------- */
struct timer {
	cap_t session, context;
	struct signal_receiver *sr;
	unsigned imprint;
	unsigned id;          /* the session's client id at the parent */
	unsigned slept_ms;    /* since the last timer_check */
};
/* timer_msleep calls timer_check after each TIMER_CHECK_MS of sleep. */
#define TIMER_CHECK_MS 1000
unsigned timer_connect(struct timer *t, unsigned id, struct signal_receiver *sr,
                       unsigned imprint);
/* E_OK, or an error after an error line: then the timer can no longer be
 * trusted (timer_check asks the parent for the session again and checks that
 * the answer is the capability we hold, see signal.c). */
unsigned timer_msleep(struct timer *t, unsigned ms);
unsigned timer_check(struct timer *t);
unsigned timer_elapsed_ms(struct timer *t);
void timer_trigger_periodic(struct timer *t, unsigned us);

/* --- threads ----------------------------------------------------------- */
struct thread {
	cap_t cap;
	void (*entry)(struct thread *);
	void *arg;
	unsigned stack_top;
	char name[16];
};
unsigned thread_create(struct thread *t, const char *name,
                       void (*entry)(struct thread *), void *arg);

/* --- entrypoint -------------------------------------------------------- */
typedef unsigned (*rpc_handler)(unsigned opcode, unsigned arg, unsigned *result);
struct entrypoint { cap_t thread; cap_t object; rpc_handler handler; };
unsigned entrypoint_manage(struct entrypoint *ep, cap_t thread, rpc_handler handler);
void entrypoint_serve(struct entrypoint *ep);   /* never returns */

/* --- config ROM ---------------------------------------------------------
 * The parent hands each component a ROM module named "config", as Genode's
 * init hands a child its <config> node; a component started without one
 * gets an empty module. Format (ours, not XML): settings `key = value`,
 * separated by newlines or ';'; blanks around keys and values are ignored,
 * '#' starts a comment that runs to the end of the line, the first setting
 * of a key wins. Integers are decimal or 0x-hex with an optional sign and at
 * most 32 bits (a hex value above 0x7fffffff comes back as its bit pattern).
 *
 * The module is requested on first use (Parent::session "ROM",
 * label="config", client id SESSION_ID_CONFIG) and attached read-only; every
 * lookup parses the attached module again, so a lookup after a restore reads
 * the module the restore recreated. */
unsigned config_init(void);        /* E_OK, or why there is no config */
int      config_int(const char *key, int dflt);
/* The value of key if it lies in min..max; else dflt, after logging
 * "<who>: key=value is outside min..max, using dflt". */
unsigned config_uint(const char *who, const char *key, unsigned dflt, unsigned min,
                     unsigned max);
/* Copies the value of key into buf (NUL-terminated, truncated to size - 1);
 * returns 1 if the key is set, 0 otherwise (buf untouched). */
unsigned config_str(const char *key, char *buf, unsigned size);
/* FNV-1a (32 bit) over the module's bytes; 0 if there is no config. */
unsigned config_digest(void);

/* Provided by each component. */
void component_main(void);

#endif
