/* A key-value table in RAM dataspaces of its own, attached into a managed
 * dataspace (an RM session's region map). Each step writes words into the
 * table; a digest of the whole table, sum(table[i] * (i + 1)), is kept up to
 * date as it writes (reading each old value), and every check_every steps
 * the table is summed in full and must agree, so a page lost or left stale by
 * a move shows as "table corrupt". Runs are deterministic: the same settings
 * give the same digests on any board.
 *
 * Settings come from the component's "config" ROM (key = value, see
 * runtime.h); the defaults give the original workload, a table that starts
 * empty and grows to 8 MiB with 20 random words written per step:
 *
 *   table_kib=8192       table size, rounded up to whole 256 KiB chunks
 *   fill=zero            zero: start empty, grow one chunk per step;
 *                        random: allocate the whole table at start-up and
 *                        fill it from the generator (incompressible data)
 *   seed=0x12345678      start value of the xorshift32 generator
 *   hot_pages=0          0: each step writes `writes` words anywhere;
 *                        N: each step rewrites words_per_page random words in
 *                        each of N pages, page k * hot_stride (k < N)
 *   hot_stride=1         distance between hot pages, in pages
 *   words_per_page=4
 *   writes=20
 *   period_ms=100        sleep between steps (the step's work comes on top)
 *   check_every          steps between full checks: 1; with hot_pages about
 *                        one check per second of steps (1000 / period_ms)
 *   log_every=1          log every n-th step
 *
 * table_kib is at most MAX_CHUNKS chunks (112 MiB), what our capability map
 * holds with room to spare. The RAM quota caps the table too: a chunk the PD
 * cannot pay for ends growth with "table full ... (err 3)" (err 4 for the cap
 * quota) and the store goes on with what it has.
 *
 * Log lines:
 *   kvstore started table_kib T fill F hot_pages H words_per_page W period_ms P check_every C config X
 *   kvstore filled T KiB digest D                 (fill=random, before step 1)
 *   kvstore: table full at T KiB (table_kib|err E)
 *   step S size_kib T digest D
 *   check step S digest D config X                (X: FNV-1a of the config ROM, re-read)
 */
#include <genode/runtime.h>

#define CHUNK_SIZE    (256 * 1024)
#define CHUNK_KIB     (CHUNK_SIZE / 1024)
/* Each chunk holds a dataspace capability in a slot of our capability map,
 * which has CAP_MAP_ENTRIES - CAP_USER_BASE_INDEX slots for what we receive.
 * The runtime keeps receiving capabilities after start-up (every RPC that
 * returns one needs a free slot, e.g. each timer_check), so the table may not
 * take them all: it is limited to what the map holds with RUNTIME_SLOTS to
 * spare, 112 MiB. A larger table_kib used to fill the map; the failing
 * allocation then left its chunk allocated and the component without a
 * receive slot. */
#define RUNTIME_SLOTS 64
#define MAX_CHUNKS    (CAP_MAP_ENTRIES - CAP_USER_BASE_INDEX - RUNTIME_SLOTS)
#define PAGE_WORDS    (PAGE_SIZE / 4)
#define DEFAULT_SEED  0x12345678

static unsigned *table;
static unsigned words;
static unsigned chunks, max_chunks;
static unsigned step;
static unsigned rng;
static unsigned incremental;   /* sum of table[i] * (i + 1), kept as we write */
static unsigned config_hash;
static cap_t region_map;
static struct signal_receiver receiver;
static struct timer timer;

static struct {
	unsigned table_kib, random_fill, hot_pages, hot_stride, words_per_page, writes;
	unsigned period_ms, check_every, log_every;
} cfg;

static unsigned next_random(void)
{
	rng ^= rng << 13; rng ^= rng >> 17; rng ^= rng << 5;
	return rng;
}

static unsigned setting(const char *key, unsigned dflt, unsigned min, unsigned max)
{
	return config_uint("kvstore", key, dflt, min, max);
}

static void configure(void)
{
	unsigned err = config_init();
	if (err)
		log("kvstore: no config ROM (err %u), using the defaults", err);
	cfg.table_kib = setting("table_kib", 8192, 1, MAX_CHUNKS * CHUNK_KIB);
	char fill[16] = "zero";
	config_str("fill", fill, sizeof(fill));
	cfg.random_fill = !strcmp(fill, "random");
	if (!cfg.random_fill && strcmp(fill, "zero"))
		log("kvstore: fill=%s is neither zero nor random, using zero", fill);
	rng = (unsigned)config_int("seed", DEFAULT_SEED);
	if (!rng) rng = DEFAULT_SEED;   /* xorshift never leaves 0 */
	cfg.hot_pages = setting("hot_pages", 0, 0, MAX_CHUNKS * (CHUNK_SIZE / PAGE_SIZE));
	cfg.hot_stride = setting("hot_stride", 1, 1, 1 << 20);
	cfg.words_per_page = setting("words_per_page", 4, 1, PAGE_WORDS);
	cfg.writes = setting("writes", 20, 0, 1 << 20);
	cfg.period_ms = setting("period_ms", 100, 1, 60000);
	unsigned per_second = 1000 / cfg.period_ms;
	cfg.check_every = setting("check_every",
	                          cfg.hot_pages && per_second > 1 ? per_second : 1, 1, 1 << 20);
	cfg.log_every = setting("log_every", 1, 1, 1 << 20);
	max_chunks = (cfg.table_kib + CHUNK_KIB - 1) / CHUNK_KIB;
	config_hash = config_digest();
}

static int grow(void)
{
	if (chunks == max_chunks) {
		log("kvstore: table full at %u KiB (table_kib)", chunks * CHUNK_KIB);
		return 0;
	}
	unsigned err;
	cap_t ds = pd_alloc(CHUNK_SIZE, &err);
	if (err) {
		log("kvstore: table full at %u KiB (err %u)", chunks * CHUNK_KIB, err);
		return 0;
	}
	rm_attach(region_map, ds, chunks * CHUNK_SIZE, ATTACH_WRITABLE | ATTACH_USE_LOCAL_ADDR, &err);
	if (err) {
		log("Error: kvstore: attach failed (%u)", err);
		rpc_call(env.pd, PD_FREE, ds, 0, 0, 0, 0);
		return 0;
	}
	chunks++;
	words = chunks * (CHUNK_SIZE / 4);
	return 1;
}

static unsigned full_digest(void)
{
	unsigned sum = 0;
	for (unsigned i = 0; i < words; i++)
		sum += table[i] * (i + 1);
	return sum;
}

static void write_word(unsigned i, unsigned value)
{
	incremental += (value - table[i]) * (i + 1);
	table[i] = value;
}

static void fill_random(void)
{
	while (grow())
		;
	for (unsigned i = 0; i < words; i++) {
		unsigned value = next_random();
		table[i] = value;
		incremental += value * (i + 1);
	}
	log("kvstore filled %u KiB digest %08x", words / 256, incremental);
}

static void write_step(void)
{
	if (!words)
		return;
	if (!cfg.hot_pages) {
		for (unsigned n = 0; n < cfg.writes; n++) {
			unsigned i = next_random() % words;
			write_word(i, next_random());
		}
		return;
	}
	unsigned pages = words / PAGE_WORDS;
	for (unsigned k = 0; k < cfg.hot_pages; k++) {
		unsigned page = (k * cfg.hot_stride) % pages;
		for (unsigned n = 0; n < cfg.words_per_page; n++) {
			unsigned i = page * PAGE_WORDS + next_random() % PAGE_WORDS;
			write_word(i, next_random());
		}
	}
}

void component_main(void)
{
	configure();
	if (signal_receiver_init(&receiver, env.main_thread)
	    || timer_connect(&timer, 10, &receiver, 1)) {
		log("Error: kvstore: no timer");
		return;
	}
	cap_t rm = parent_session(11, "RM", "");
	region_map = rm ? rpc_call(rm, RM_SESSION_CREATE, max_chunks * CHUNK_SIZE, 0, 0, 0, 1).cap : 0;
	cap_t managed = region_map ? rpc_call(region_map, RM_DATASPACE, 0, 0, 0, 0, 1).cap : 0;
	unsigned err = E_INVALID_CAP;
	if (managed)
		table = (unsigned *)rm_attach(env.address_space, managed, 0, ATTACH_WRITABLE, &err);
	if (err) {
		log("Error: kvstore: no managed dataspace (%u)", err);
		return;
	}
	log("kvstore started table_kib %u fill %s hot_pages %u words_per_page %u period_ms %u "
	    "check_every %u config %08x", max_chunks * CHUNK_KIB, cfg.random_fill ? "random" : "zero",
	    cfg.hot_pages, cfg.words_per_page, cfg.period_ms, cfg.check_every, config_hash);
	int growing = 1;
	if (cfg.random_fill) {
		fill_random();
		growing = 0;
	}
	for (;;) {
		if (timer_msleep(&timer, cfg.period_ms)) {
			log("Error: kvstore: timer wait failed");
			return;
		}
		if (growing) growing = grow();
		write_step();
		step++;
		if (step % cfg.check_every == 0) {
			unsigned digest = full_digest();
			if (digest != incremental) {
				log("Error: kvstore: table corrupt at step %u (%08x != %08x)",
				    step, digest, incremental);
				return;
			}
			/* Read the config again: after a move it must be the same module. */
			unsigned hash = config_digest();
			if (hash != config_hash) {
				log("Error: kvstore: config ROM changed at step %u (%08x != %08x)",
				    step, hash, config_hash);
				return;
			}
			log("check step %u digest %08x config %08x", step, digest, hash);
		}
		if (step % cfg.log_every == 0)
			log("step %u size_kib %u digest %08x", step, words / 256, incremental);
	}
}
