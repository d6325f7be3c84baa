/* The component's "config" ROM: requested from the parent like any ROM
 * session, attached read-only, and parsed on every lookup (see runtime.h for
 * the format). Nothing is cached but the attachment, so the settings are
 * whatever the module holds now: after a restore, the recreated module. */
#include <genode/runtime.h>

static const char *text;
static unsigned text_len;
static unsigned init_err;
static unsigned initialised;

unsigned config_init(void)
{
	if (initialised)
		return init_err;
	initialised = 1;
	init_err = E_SERVICE_DENIED;
	cap_t rom = parent_session(SESSION_ID_CONFIG, "ROM", "label=\"config\"");
	if (!rom)
		return init_err;
	struct rpc_result r = rpc_call(rom, ROM_DATASPACE, 0, 0, 0, 0, 1);
	if (r.err)
		return init_err = r.err;
	unsigned err;
	unsigned addr = rm_attach(env.address_space, r.cap, 0, 0, &err);
	if (err)
		return init_err = err;
	text = (const char *)addr;
	text_len = r.r1;
	return init_err = E_OK;
}

static int blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* Finds the first setting of key; its value is [*value, *value + *len). */
static int lookup(const char *key, const char **value, unsigned *len)
{
	if (config_init() != E_OK)
		return 0;
	size_t key_len = strlen(key);
	unsigned pos = 0;
	while (pos < text_len) {
		unsigned end = pos;
		while (end < text_len && text[end] != '\n' && text[end] != ';') end++;
		unsigned stop = pos;
		while (stop < end && text[stop] != '#') stop++;
		unsigned k = pos;
		while (k < stop && blank(text[k])) k++;
		unsigned eq = k;
		while (eq < stop && text[eq] != '=') eq++;
		if (eq < stop) {
			unsigned k_end = eq;
			while (k_end > k && blank(text[k_end - 1])) k_end--;
			unsigned i = 0;
			while (i < key_len && k + i < k_end && text[k + i] == key[i]) i++;
			if (i == key_len && k + i == k_end) {
				unsigned v = eq + 1, v_end = stop;
				while (v < v_end && blank(text[v])) v++;
				while (v_end > v && blank(text[v_end - 1])) v_end--;
				*value = text + v;
				*len = v_end - v;
				return 1;
			}
		}
		pos = end + 1;
	}
	return 0;
}

static int parse_int(const char *s, unsigned len, int *out)
{
	unsigned i = 0, base = 10, negative = 0;
	unsigned long long v = 0;
	if (i < len && (s[i] == '-' || s[i] == '+'))
		negative = s[i++] == '-';
	if (len - i > 2 && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
		base = 16;
		i += 2;
	}
	if (i == len)
		return 0;
	for (; i < len; i++) {
		char c = s[i];
		unsigned digit;
		if (c >= '0' && c <= '9') digit = (unsigned)(c - '0');
		else if (base == 16 && c >= 'a' && c <= 'f') digit = (unsigned)(c - 'a' + 10);
		else if (base == 16 && c >= 'A' && c <= 'F') digit = (unsigned)(c - 'A' + 10);
		else return 0;
		v = v * base + digit;
		if (v > 0xffffffffULL)
			return 0;
	}
	unsigned bits = (unsigned)v;
	*out = (int)(negative ? 0u - bits : bits);
	return 1;
}

int config_int(const char *key, int dflt)
{
	const char *value;
	unsigned len;
	int result;
	if (!lookup(key, &value, &len))
		return dflt;
	if (!parse_int(value, len, &result)) {
		log("config: %s is not an integer, using %d", key, dflt);
		return dflt;
	}
	return result;
}

unsigned config_uint(const char *who, const char *key, unsigned dflt, unsigned min,
                     unsigned max)
{
	int value = config_int(key, (int)dflt);
	if (value < (int)min || (unsigned)value > max) {
		log("%s: %s=%d is outside %u..%u, using %u", who, key, value, min, max, dflt);
		return dflt;
	}
	return (unsigned)value;
}

unsigned config_str(const char *key, char *buf, unsigned size)
{
	const char *value;
	unsigned len;
	if (!size || !lookup(key, &value, &len))
		return 0;
	if (len > size - 1)
		len = size - 1;
	memcpy(buf, value, len);
	buf[len] = 0;
	return 1;
}

unsigned config_digest(void)
{
	if (config_init() != E_OK)
		return 0;
	unsigned h = 0x811c9dc5;
	for (unsigned i = 0; i < text_len; i++) {
		h ^= (unsigned char)text[i];
		h *= 0x01000193;
	}
	return h;
}
