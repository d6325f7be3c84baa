/* The capability map lives in component memory, as base-foc's Cap_index
 * array does. The kernel only knows slot -> object; which badge sits in which
 * slot is this table's business, and every received capability is looked up
 * here by badge. A restore that leaves old badges here breaks the component.
 *
 * Every thread of the component reserves, fills and searches the map, so it
 * is guarded by a spinlock, as Genode's Capability_map is. The lock is taken
 * with ldrex/strex; a thread that finds it taken yields, since the holder
 * only runs again when it is scheduled (one core). No critical section makes
 * a system call, so a holder always releases the lock before it next enters
 * the kernel (the CR component relies on that when it settles a thread
 * before a checkpoint). */
#include <genode/runtime.h>

struct cap_map cap_map = { CAP_MAP_MAGIC, CAP_MAP_ENTRIES, { { 0, 0, 0, 0 } } };

static unsigned cap_map_lock;   /* 0 free, 1 taken */

static void lock(void)
{
	while (__atomic_exchange_n(&cap_map_lock, 1, __ATOMIC_ACQUIRE))
		sys_yield();
}

static void unlock(void)
{
	__atomic_store_n(&cap_map_lock, 0, __ATOMIC_RELEASE);
}

static unsigned index_of(cap_t cap) { return cap >> CAP_SHIFT; }

static cap_t lookup_locked(unsigned badge)
{
	for (unsigned i = 1; i < CAP_MAP_ENTRIES; i++)
		if (cap_map.idx[i].ref && cap_map.idx[i].badge == badge)
			return i << CAP_SHIFT;
	return 0;
}

cap_t cap_lookup_badge(unsigned badge)
{
	lock();
	cap_t cap = lookup_locked(badge);
	unlock();
	return cap;
}

unsigned cap_badge(cap_t cap)
{
	return cap_map.idx[index_of(cap)].badge;
}

cap_t cap_receive_slot(void)
{
	cap_t slot = 0;
	lock();
	for (unsigned i = CAP_USER_BASE_INDEX; i < CAP_MAP_ENTRIES; i++)
		if (!cap_map.idx[i].ref && !cap_map.idx[i].flags) {
			cap_map.idx[i].flags = 1;   /* reserved for a receive */
			slot = i << CAP_SHIFT;
			break;
		}
	unlock();
	return slot;
}

void cap_release_slot(cap_t slot)
{
	lock();
	cap_map.idx[index_of(slot)].flags = 0;
	unlock();
}

/* base-foc's receive path: a badge we already hold reuses its slot, so a
 * capability is only ever in one slot of our map. */
cap_t cap_accept(cap_t slot, unsigned badge)
{
	lock();
	cap_t cap = lookup_locked(badge);
	cap_map.idx[index_of(slot)].flags = 0;
	if (cap) {
		if (cap_map.idx[index_of(cap)].ref < 255)
			cap_map.idx[index_of(cap)].ref++;
	} else {
		cap_map.idx[index_of(slot)].badge = badge;
		cap_map.idx[index_of(slot)].ref = 1;
		cap = slot;
	}
	unlock();
	return cap;
}

void cap_map_insert(cap_t cap, unsigned badge)
{
	lock();
	cap_map.idx[index_of(cap)].badge = badge;
	cap_map.idx[index_of(cap)].ref = 1;
	unlock();
}
