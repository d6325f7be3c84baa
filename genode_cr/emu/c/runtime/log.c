/* A small formatter for the LOG session: %u %d %x %08x %s %c. */
#include <genode/runtime.h>
#include <stdarg.h>

struct out { char buf[200]; unsigned len; };

static void put(struct out *o, char c)
{
	if (o->len < sizeof(o->buf)) o->buf[o->len++] = c;
}

static void put_unsigned(struct out *o, unsigned v, unsigned base, unsigned width, char pad)
{
	char digits[12];
	unsigned n = 0;
	do { digits[n++] = "0123456789abcdef"[v % base]; v /= base; } while (v);
	while (width > n) { put(o, pad); width--; }
	while (n) put(o, digits[--n]);
}

void log(const char *fmt, ...)
{
	struct out o;
	o.len = 0;
	va_list ap;
	va_start(ap, fmt);
	for (; *fmt; fmt++) {
		if (*fmt != '%') { put(&o, *fmt); continue; }
		fmt++;
		char pad = ' ';
		unsigned width = 0;
		if (*fmt == '0') { pad = '0'; fmt++; }
		while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (unsigned)(*fmt++ - '0');
		switch (*fmt) {
		case 'u': put_unsigned(&o, va_arg(ap, unsigned), 10, width, pad); break;
		case 'x': put_unsigned(&o, va_arg(ap, unsigned), 16, width, pad); break;
		case 'd': {
			int v = va_arg(ap, int);
			if (v < 0) { put(&o, '-'); v = -v; }
			put_unsigned(&o, (unsigned)v, 10, width, pad);
			break;
		}
		case 's': for (const char *s = va_arg(ap, const char *); *s; s++) put(&o, *s); break;
		case 'c': put(&o, (char)va_arg(ap, int)); break;
		case '%': put(&o, '%'); break;
		default: put(&o, '?'); break;
		}
	}
	va_end(ap);
	rpc_call(env.log, LOG_WRITE, (unsigned)o.buf, o.len, 0, 0, 0);
}
