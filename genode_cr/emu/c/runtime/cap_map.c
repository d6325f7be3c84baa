/* The capability map lives in component memory, as base-foc's Cap_index
 * array does. The kernel only knows slot -> object; which badge sits in which
 * slot is this table's business, and every received capability is looked up
 * here by badge. A restore that leaves old badges here breaks the component. */
#include <genode/runtime.h>

struct cap_map cap_map = { CAP_MAP_MAGIC, CAP_MAP_ENTRIES, { { 0, 0, 0, 0 } } };

static unsigned index_of(cap_t cap) { return cap >> CAP_SHIFT; }

cap_t cap_lookup_badge(unsigned badge)
{
	for (unsigned i = 1; i < CAP_MAP_ENTRIES; i++)
		if (cap_map.idx[i].ref && cap_map.idx[i].badge == badge)
			return i << CAP_SHIFT;
	return 0;
}

unsigned cap_badge(cap_t cap)
{
	return cap_map.idx[index_of(cap)].badge;
}

cap_t cap_receive_slot(void)
{
	for (unsigned i = CAP_USER_BASE_INDEX; i < CAP_MAP_ENTRIES; i++)
		if (!cap_map.idx[i].ref && !cap_map.idx[i].flags) {
			cap_map.idx[i].flags = 1;   /* reserved for a receive */
			return i << CAP_SHIFT;
		}
	return 0;
}

void cap_release_slot(cap_t slot)
{
	cap_map.idx[index_of(slot)].flags = 0;
}

/* base-foc's receive path: a badge we already hold reuses its slot, so a
 * capability is only ever in one slot of our map. */
cap_t cap_accept(cap_t slot, unsigned badge)
{
	cap_t known = cap_lookup_badge(badge);
	cap_release_slot(slot);
	if (known) {
		if (cap_map.idx[index_of(known)].ref < 255)
			cap_map.idx[index_of(known)].ref++;
		return known;
	}
	cap_map.idx[index_of(slot)].badge = badge;
	cap_map.idx[index_of(slot)].ref = 1;
	return slot;
}

void cap_map_insert(cap_t cap, unsigned badge)
{
	cap_map.idx[index_of(cap)].badge = badge;
	cap_map.idx[index_of(cap)].ref = 1;
}
