/*
 * The kernel and core ABI of the emulated Genode/Fiasco.OC board.
 *
 * This header is the single source of truth for both sides: the C runtime
 * includes it, and genode_cr/emu/abi.py reads the #define lines at import.
 * Keep every constant a plain "#define NAME value" so that both can parse it.
 */
#ifndef GENODE_ABI_H
#define GENODE_ABI_H

/* Capability selectors are slot addresses: index << 12, as on Fiasco.OC. */
#define CAP_SHIFT            12
#define CAP_PARENT_INDEX     0x8
#define CAP_MAIN_THREAD_INDEX 0x9
#define CAP_USER_BASE_INDEX  0x200
#define CAP_MAP_ENTRIES      1024
#define CAP_MAP_MAGIC        0x4d504143

/* Cap_index entry in component memory: u32 next, u8 ref, u8 flags, u16 badge. */
#define CAP_INDEX_SIZE       8
#define CAP_MAP_HEADER_SIZE  8

/* Address-space layout shared by the ELF loader, core and the runtime. */
#define STACK_AREA_BASE      0x40000000
#define STACK_AREA_SIZE      0x10000000
#define STACK_SLOT_SIZE      0x00100000
#define STACK_SIZE           0x00004000
#define LINKER_AREA_BASE     0x50000000
#define LINKER_AREA_SIZE     0x01000000
#define ATTACH_ANY_BASE      0x60000000
#define ATTACH_ANY_END       0xb0000000
#define PAGE_SIZE            4096

/* System calls: number in r7, arguments in r0..r6, results in r0..r5. */
#define SYS_CALL             1   /* r0 dst, r1 opcode, r2..r5 args, r6 receive slot -> r0 err, r1..r3 results, r4 received badge */
#define SYS_REPLY_WAIT       2   /* r0 has_reply, r1 reply err, r2..r3 reply words -> r0 err, r1 label, r2 opcode, r3..r5 args */
#define SYS_IRQ_RECEIVE      3   /* r0 irq -> r0 err; blocks until the IRQ triggers */
#define SYS_IRQ_ATTACH       4   /* r0 irq, r1 thread -> r0 err */
#define SYS_THREAD_EXIT      5
#define SYS_YIELD            6

/* Error codes returned in r0. */
#define E_OK                 0
#define E_INVALID_CAP        1
#define E_INVALID_OPCODE     2
#define E_OUT_OF_RAM         3
#define E_OUT_OF_CAPS        4
#define E_DENIED             5
#define E_INVALID_ARG        6
#define E_NOT_ATTACHED       7
#define E_NO_SIGNAL          8
#define E_REGION_CONFLICT    9
#define E_SERVICE_DENIED     10

/* Parent interface (the CR component), reached at CAP_PARENT_INDEX. */
#define PARENT_SESSION       1   /* r2 id, r3 service name ptr, r4 args ptr -> cap */
#define PARENT_ANNOUNCE_CAP_MAP 2 /* r2 cap map address, r3 entries */
#define PARENT_EXIT          3   /* r2 exit code */

/* Well-known client-side session ids of the environment sessions. */
#define SESSION_ID_PD        1
#define SESSION_ID_CPU       2
#define SESSION_ID_LOG       3
#define SESSION_ID_CONFIG    4   /* the ROM session of the component's "config" module */

/* PD session */
#define PD_ALLOC             1   /* r2 size -> ds cap, r1 size */
#define PD_FREE              2   /* r2 ds */
#define PD_ADDRESS_SPACE     3   /* -> region map cap */
#define PD_STACK_AREA        4   /* -> region map cap */
#define PD_LINKER_AREA       5   /* -> region map cap */
#define PD_ALLOC_SIGNAL_SOURCE 6 /* -> signal source cap */
#define PD_ALLOC_CONTEXT     7   /* r2 source, r3 imprint -> signal context cap */
#define PD_SUBMIT            8   /* r2 context, r3 count */
#define PD_ALLOC_RPC_CAP     9   /* r2 entrypoint thread -> gate cap */
#define PD_RAM_QUOTA         10  /* -> r1 quota, r2 used */
#define PD_CAP_QUOTA         11  /* -> r1 quota, r2 used */

/* Region map */
#define RM_ATTACH            1   /* r2 ds, r3 local addr, r4 flags, r5 size (0: whole) -> r1 addr */
#define RM_DETACH            2   /* r2 addr */
#define RM_DATASPACE         3   /* -> managed dataspace cap */
#define ATTACH_WRITABLE      1
#define ATTACH_EXECUTABLE    2
#define ATTACH_USE_LOCAL_ADDR 4

/* Dataspace */
#define DS_SIZE              1   /* -> r1 size */

/* RM session */
#define RM_SESSION_CREATE    1   /* r2 size -> region map cap */

/* Signal source */
#define SIGSRC_REQUEST_SEMAPHORE 1 /* -> irq cap */
#define SIGSRC_WAIT_FOR_SIGNAL 2 /* -> r1 imprint, r2 count, or E_NO_SIGNAL */

/* CPU session and threads */
#define CPU_CREATE_THREAD    1   /* r2 pd, r3 name ptr -> thread cap */
#define CPU_KILL_THREAD      2   /* r2 thread */
#define THREAD_START         1   /* r2 ip, r3 sp, r4 initial r0 */
#define THREAD_PAUSE         2
#define THREAD_RESUME        3

/* LOG session */
#define LOG_WRITE            1   /* r2 ptr, r3 len */

/* Timer session */
#define TIMER_TRIGGER_ONCE   1   /* r2 microseconds */
#define TIMER_TRIGGER_PERIODIC 2 /* r2 microseconds */
#define TIMER_SIGH           3   /* r2 signal context */
#define TIMER_ELAPSED_MS     4   /* -> r1 low, r2 high */

/* ROM session */
#define ROM_DATASPACE        1   /* -> ds cap, r1 size */

#endif
