/* A key-value table that grows in RAM dataspaces of its own, attached into a
 * managed dataspace (an RM session's region map). Each step writes entries
 * all over the table and then logs a digest computed from the whole table,
 * so a page lost or left stale by a move changes every later digest. A
 * second digest kept incrementally must always agree with the full one. */
#include <genode/runtime.h>

#define CHUNK_SIZE   (256 * 1024)
#define MAX_CHUNKS   40
#define WRITES       20   /* about 1 % of the pages of an 8 MiB table per step */
#define PERIOD_MS    100

static unsigned *table;
static unsigned words;
static unsigned chunks;
static unsigned step;
static unsigned rng = 0x12345678;
static unsigned incremental;   /* sum of table[i] * (i + 1), kept as we write */
static cap_t region_map;
static struct signal_receiver receiver;
static struct timer timer;

static unsigned next_random(void)
{
	rng ^= rng << 13; rng ^= rng >> 17; rng ^= rng << 5;
	return rng;
}

static int grow(void)
{
	unsigned err;
	cap_t ds = pd_alloc(CHUNK_SIZE, &err);
	if (err) {
		log("kvstore: table full at %u KiB (err %u)", chunks * CHUNK_SIZE / 1024, err);
		return 0;
	}
	rm_attach(region_map, ds, chunks * CHUNK_SIZE, ATTACH_WRITABLE | ATTACH_USE_LOCAL_ADDR, &err);
	if (err) {
		log("Error: kvstore: attach failed (%u)", err);
		return 0;
	}
	chunks++;
	words = chunks * CHUNK_SIZE / 4;
	return 1;
}

static unsigned full_digest(void)
{
	unsigned sum = 0;
	for (unsigned i = 0; i < words; i++)
		sum += table[i] * (i + 1);
	return sum;
}

void component_main(void)
{
	if (signal_receiver_init(&receiver, env.main_thread)
	    || timer_connect(&timer, 10, &receiver, 1)) {
		log("Error: kvstore: no timer");
		return;
	}
	cap_t rm = parent_session(11, "RM", "");
	region_map = rm ? rpc_call(rm, RM_SESSION_CREATE, MAX_CHUNKS * CHUNK_SIZE, 0, 0, 0, 1).cap : 0;
	cap_t managed = region_map ? rpc_call(region_map, RM_DATASPACE, 0, 0, 0, 0, 1).cap : 0;
	unsigned err = E_INVALID_CAP;
	if (managed)
		table = (unsigned *)rm_attach(env.address_space, managed, 0, ATTACH_WRITABLE, &err);
	if (err) {
		log("Error: kvstore: no managed dataspace (%u)", err);
		return;
	}
	log("kvstore started");
	int growing = 1;
	for (;;) {
		if (timer_msleep(&timer, PERIOD_MS)) {
			log("Error: kvstore: timer wait failed");
			return;
		}
		if (growing) growing = grow();
		for (unsigned n = 0; n < WRITES; n++) {
			unsigned i = next_random() % words;
			unsigned value = next_random();
			incremental += (value - table[i]) * (i + 1);
			table[i] = value;
		}
		step++;
		unsigned digest = full_digest();
		if (digest != incremental) {
			log("Error: kvstore: table corrupt at step %u (%08x != %08x)", step, digest, incremental);
			return;
		}
		log("step %u size_kib %u digest %08x", step, words / 256, digest);
	}
}
