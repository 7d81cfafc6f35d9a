/* Roomcast benchmark load generator and C reference relay.  Loopback only, every loop bounded.
 *
 *   loadgen run            read a plan on stdin (see bench/README.md); the sockets are
 *                          inherited, already registered and joined by bench/run.py
 *   loadgen relay PORT S   the C ceiling relay: "JOIN room" / "MSG room body" on
 *                          127.0.0.1:PORT, recvmmsg + one sendmmsg per message, exits after S s
 *   loadgen acks           run the receivers' acknowledgement logic over a test vector on stdin
 *                          (tests/unit/ack_vector.txt) and print the acks: the same vector pins
 *                          the real client's shared/inbox.py, so both acknowledge alike
 *
 * One thread, one core: one or more senders (closed loop with a window, or paced), each in
 * its room, and all receivers, drained with recvmmsg.  Each message body carries "~LG" + the
 * send time (16 hex digits of CLOCK_MONOTONIC ns) + the sender's index (2 hex digits), so a
 * receiver measures sender -> receiver latency and counts each sender's lines apart.  A
 * sender is also a member of its room: it receives (and acknowledges) the other senders'
 * lines there, and takes its own lines' seqs from the replies to its says.  With "idle 1" in
 * the plan the generator sleeps in epoll between sends instead of spinning (a timerfd wakes
 * it for the next paced send), leaving its core to the processes under test.  Envelope receivers
 * acknowledge like the real client (shared/inbox.py): cumulative up to the first gap, with up
 * to MAX_SACK selective acks beyond it, every ACK_EVERY deliveries released or ACK_DELAY after
 * the first, and at once on a gap or a duplicate; a reordered delivery is not a duplicate.
 * The result is one JSON line on stdout; a run in which nothing was delivered (or, paced, no
 * latency was sampled) says so on stderr and exits with status 3.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_PEERS 1100
#define MAX_SENDERS 64
#define BATCH 64
#define DGRAM 2048
#define ACK_EVERY 32
#define ACK_DELAY_NS 20000000ull
#define POLL_RETRY_NS 50000000ull
#define STALL_NS 300000000ull
/* After the senders stop: wait for what is still in flight while it keeps arriving (a gap of
 * STALL_NS without a delivery ends the wait), at most this long.  A slow relay's last window
 * (48 messages to 999 receivers is 48,000 deliveries) is late, not lost. */
#define TAIL_NS 5000000000ull
#define CLIENT_WINDOW 32
#define MAX_SAMPLES 4000000
#define MAX_SACK 48
#define REORDER 4096 /* MEMBER_WINDOW: how far ahead of the first gap a delivery is kept */

enum proto { P_RELAY, P_TEXT, P_ENV };

typedef struct {
    int fd;
    char room[40];
    uint8_t token[16];
    uint64_t expected;           /* next seq to release in order (Reorder.expected) */
    uint8_t waiting[REORDER / 8]; /* seqs ahead of it that arrived, bit seq % REORDER */
    uint8_t mine[REORDER / 8];    /* of those, its own lines (a reply's seq): they owe no ack */
    int nwaiting;
    int unacked;
    uint64_t ack_due; /* 0: no ack pending */
    uint64_t poll_due;
    /* a sender's own figures: ids, lines sent, answers, receptions of its lines (got) */
    int index, members; /* members: who receives its lines (receivers and other senders) */
    uint64_t next_id, sent, answered, refused, got, written_off, last_got, last_progress, next_send;
    uint64_t got_at_warm, got_at_end, sent_at_warm, sent_at_end;
} peer;

static peer recvs[MAX_PEERS];
static int nrecv;
static peer snds[MAX_SENDERS];
static int nsnd;
static int idle_mode;
static enum proto proto = P_RELAY;
static double duration = 2.0, warmup = 0.5, grace = 0.3, rate = 0.0;
static int window = 32, body_size = 100, poll_mode = 0;
static uint32_t *samples;
static size_t nsamples;
static uint64_t received, received_at_warm, received_at_end, dups, acks, polls, sender_in, sent;
static uint64_t sent_at_warm, sent_at_end;
static int warm; /* the warm-up is over: latency samples count from now on */

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* --- a little msgpack: enough to write say/ack and to read kind and seq -------------------- */

static uint8_t *put_str(uint8_t *p, const char *s, size_t n) {
    if (n < 32) {
        *p++ = (uint8_t)(0xa0 | n);
    } else {
        *p++ = 0xd9;
        *p++ = (uint8_t)n;
    }
    memcpy(p, s, n);
    return p + n;
}

static uint8_t *put_key(uint8_t *p, const char *s) { return put_str(p, s, strlen(s)); }

static uint8_t *put_uint(uint8_t *p, uint64_t v) {
    *p++ = 0xcf;
    for (int i = 7; i >= 0; i--) *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint8_t *put_token(uint8_t *p, const uint8_t *token) {
    p = put_key(p, "s");
    *p++ = 0xc4;
    *p++ = 16;
    memcpy(p, token, 16);
    return p + 16;
}

static const uint8_t *skip(const uint8_t *p, const uint8_t *end, int depth);

static const uint8_t *skip_n(const uint8_t *p, const uint8_t *end, size_t n) {
    return (p && (size_t)(end - p) >= n) ? p + n : NULL;
}

static size_t be(const uint8_t *p, int n) {
    size_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

static const uint8_t *skip(const uint8_t *p, const uint8_t *end, int depth) {
    if (!p || p >= end || depth > 4) return NULL;
    uint8_t c = *p++;
    if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) return p;
    if ((c & 0xe0) == 0xa0) return skip_n(p, end, c & 0x1f);
    if ((c & 0xf0) == 0x90 || (c & 0xf0) == 0x80) {
        size_t items = (size_t)(c & 0x0f) * ((c & 0xf0) == 0x80 ? 2 : 1);
        for (size_t i = 0; i < items && p; i++) p = skip(p, end, depth + 1);
        return p;
    }
    switch (c) {
    case 0xcc: case 0xd0: return skip_n(p, end, 1);
    case 0xcd: case 0xd1: return skip_n(p, end, 2);
    case 0xce: case 0xd2: case 0xca: return skip_n(p, end, 4);
    case 0xcf: case 0xd3: case 0xcb: return skip_n(p, end, 8);
    case 0xc4: case 0xd9: return (end - p >= 1) ? skip_n(p + 1, end, p[0]) : NULL;
    case 0xc5: case 0xda: return (end - p >= 2) ? skip_n(p + 2, end, be(p, 2)) : NULL;
    case 0xdc: {
        if (end - p < 2) return NULL;
        size_t items = be(p, 2);
        p += 2;
        for (size_t i = 0; i < items && p; i++) p = skip(p, end, depth + 1);
        return p;
    }
    default: return NULL;
    }
}

/* Kind ("deliver", "reply", ...) and seq of an envelope; 0 on success. */
static int read_envelope(const uint8_t *p, size_t n, char *kind, uint64_t *seq) {
    const uint8_t *end = p + n;
    kind[0] = 0;
    *seq = 0;
    if (n < 3 || p[0] != 0xc1 || p[1] != 1 || (p[2] & 0xf0) != 0x80) return -1;
    int entries = p[2] & 0x0f;
    p += 3;
    for (int i = 0; i < entries; i++) {
        if (p >= end || (*p & 0xe0) != 0xa0) return -1;
        size_t klen = *p & 0x1f;
        const uint8_t *key = p + 1;
        p = skip_n(p + 1, end, klen);
        if (!p || p >= end) return -1;
        if (klen == 1 && key[0] == 'k' && (*p & 0xe0) == 0xa0 && (size_t)(*p & 0x1f) < 15) {
            size_t len = *p & 0x1f;
            if ((size_t)(end - p) < len + 1) return -1;
            memcpy(kind, p + 1, len);
            kind[len] = 0;
        } else if (klen == 3 && memcmp(key, "seq", 3) == 0) {
            uint8_t c = *p;
            if (c <= 0x7f) *seq = c;
            else if (c >= 0xcc && c <= 0xcf && end - p > (1 << (c - 0xcc))) *seq = be(p + 1, 1 << (c - 0xcc));
        }
        p = skip(p, end, 0);
        if (!p) return -1;
    }
    return 0;
}

/* --- messages ------------------------------------------------------------------------------ */

static size_t make_body(const peer *s, char *out, uint64_t ts) {
    int n = snprintf(out, 64, "~LG%016llx%02x %llu ", (unsigned long long)ts, (unsigned)s->index,
                     (unsigned long long)s->sent);
    while (n < body_size) out[n++] = 'x';
    return (size_t)n;
}

static size_t make_message(peer *s, uint8_t *out, uint64_t ts) {
    char body[512];
    size_t blen = make_body(s, body, ts);
    if (proto == P_RELAY) {
        int n = snprintf((char *)out, 64, "MSG %s ", s->room);
        memcpy(out + n, body, blen);
        return (size_t)n + blen;
    }
    if (proto == P_TEXT) {
        memcpy(out, body, blen);
        out[blen] = '\n';
        return blen + 1;
    }
    uint8_t *p = out;
    *p++ = 0xc1;
    *p++ = 1;
    *p++ = 0x85;
    p = put_key(p, "k");
    p = put_key(p, "say");
    p = put_token(p, s->token);
    p = put_key(p, "id");
    p = put_uint(p, s->next_id++);
    p = put_key(p, "room");
    p = put_key(p, s->room);
    p = put_key(p, "body");
    p = put_str(p, body, blen);
    return (size_t)(p - out);
}

/* --- receiving in order and acknowledging, as shared/inbox.py does ----------------------------- */

static int is_waiting(const peer *r, uint64_t seq) { return r->waiting[(seq % REORDER) / 8] >> (seq % 8) & 1; }

static int is_mine(const peer *r, uint64_t seq) { return r->mine[(seq % REORDER) / 8] >> (seq % 8) & 1; }

static void set_bit(uint8_t *bits, uint64_t seq, int on) {
    uint8_t bit = (uint8_t)(1u << (seq % 8));
    if (on) bits[(seq % REORDER) / 8] |= bit;
    else bits[(seq % REORDER) / 8] &= (uint8_t)~bit;
}

static void set_waiting(peer *r, uint64_t seq, int on) { set_bit(r->waiting, seq, on); }

/* Reorder.ack(): everything up to expected - 1 arrived, and the first MAX_SACK seqs beyond. */
static int ack_state(const peer *r, uint64_t *upto, uint64_t *sack) {
    int n = 0, left = r->nwaiting;
    *upto = r->expected - 1;
    for (uint64_t s = r->expected + 1; left > 0 && n < MAX_SACK && s < r->expected + REORDER; s++)
        if (is_waiting(r, s)) sack[n++] = s, left--;
    return n;
}

static void send_ack(peer *r) {
    uint64_t upto, sack[MAX_SACK];
    int nsack = ack_state(r, &upto, sack);
    uint8_t buf[768], *p = buf;
    *p++ = 0xc1;
    *p++ = 1;
    *p++ = nsack ? 0x85 : 0x84;
    p = put_key(p, "k");
    p = put_key(p, "ack");
    p = put_token(p, r->token);
    p = put_key(p, "stream");
    p = put_key(p, r->room);
    p = put_key(p, "upto");
    p = put_uint(p, upto);
    if (nsack) {
        p = put_key(p, "sack");
        if (nsack < 16) {
            *p++ = (uint8_t)(0x90 | nsack); /* fixarray */
        } else {
            *p++ = 0xdc; /* array 16 */
            *p++ = 0;
            *p++ = (uint8_t)nsack;
        }
        for (int i = 0; i < nsack; i++) p = put_uint(p, sack[i]);
    }
    if (r->fd < 0 || send(r->fd, buf, (size_t)(p - buf), 0) > 0) acks++;
    r->unacked = 0;
    r->ack_due = 0;
}

/* One delivery of seq at time t (own: the seq of our own line, from the reply to our say): 1
 * if it is new (to be counted), 0 if a duplicate or too far ahead.  Reorder.push, then
 * Inbox._release/_ready: ack at once on a duplicate or a gap, or after ACK_EVERY released,
 * else ACK_DELAY after the first unacknowledged one; our own lines owe no ack (the hub marked
 * them as ours when it answered), so they count for none of that (Inbox.own). */
static int receive_seq(peer *r, uint64_t seq, uint64_t t, int own) {
    int fresh = 0, dup = 0, released = 0;
    if (seq < r->expected || is_waiting(r, seq)) {
        if (!own) dups++;
        dup = 1;
    } else if (seq < r->expected + REORDER) {
        fresh = 1;
        set_waiting(r, seq, 1);
        set_bit(r->mine, seq, own);
        r->nwaiting++;
        while (is_waiting(r, r->expected)) {
            released += !is_mine(r, r->expected);
            set_waiting(r, r->expected, 0);
            set_bit(r->mine, r->expected, 0);
            r->nwaiting--;
            r->expected++;
        }
    }
    if (!own && (dup || r->nwaiting)) r->ack_due = t; /* a duplicate (our ack was lost) or a gap */
    r->unacked += released;
    if (r->unacked >= ACK_EVERY) r->ack_due = t;
    else if (!r->ack_due && released) r->ack_due = t + ACK_DELAY_NS;
    if (r->ack_due && r->ack_due <= t) send_ack(r);
    return fresh;
}

static void send_poll(peer *r, uint64_t t) {
    if (send(r->fd, "\n", 1, 0) > 0) polls++;
    r->poll_due = t + POLL_RETRY_NS;
}

/* Count the marked messages in one datagram and time them. */
static void count_marks(const uint8_t *data, size_t n, uint64_t t) {
    const uint8_t *p = data, *end = data + n;
    while ((p = memmem(p, (size_t)(end - p), "~LG", 3)) != NULL) {
        p += 3;
        uint64_t ts = 0;
        int ok = end - p >= 16;
        for (int i = 0; ok && i < 16; i++) {
            int v = hexval(p[i]);
            if (v < 0) ok = 0;
            ts = (ts << 4) | (uint64_t)v;
        }
        if (!ok) continue;
        int index = (end - p >= 18 && hexval(p[16]) >= 0 && hexval(p[17]) >= 0)
                        ? hexval(p[16]) * 16 + hexval(p[17]) : 0;
        if (index < nsnd) snds[index].got++;
        received++;
        if (rate > 0 && samples && nsamples < MAX_SAMPLES && warm && t > ts)
            samples[nsamples++] = (uint32_t)((t - ts) / 100); /* units of 0.1 us */
    }
}

static void on_datagram(peer *r, const uint8_t *data, size_t n, uint64_t t) {
    if (proto != P_ENV) {
        count_marks(data, n, t);
        if (poll_mode) send_poll(r, t);
        return;
    }
    char kind[16];
    uint64_t seq;
    if (read_envelope(data, n, kind, &seq) != 0) return;
    if (strcmp(kind, "deliver") != 0 && strcmp(kind, "presence") != 0) return;
    if (receive_seq(r, seq, t, 0)) count_marks(data, n, t);
}

/* What the relay says to a sender: for the hub, the answers to its says (a reply's seq is its
 * own line's place in the room's stream) and, in a room with other senders, their lines. */
static void on_sender_datagram(peer *s, const uint8_t *data, size_t n, uint64_t t) {
    char kind[16];
    uint64_t seq;
    if (proto != P_ENV) {
        s->answered++, sender_in++;
        return;
    }
    if (read_envelope(data, n, kind, &seq) != 0) return;
    if (!strcmp(kind, "reply")) {
        s->answered++, sender_in++;
        if (seq) receive_seq(s, seq, t, 1);
    } else if (!strcmp(kind, "error")) {
        s->answered++, s->refused++;
    } else {
        on_datagram(s, data, n, t);
    }
}

static int is_sender(const peer *r) { return r >= snds && r < snds + nsnd; }

static void drain(peer *r, uint64_t t) {
    static uint8_t bufs[BATCH][DGRAM];
    static struct iovec iov[BATCH];
    static struct mmsghdr msgs[BATCH];
    for (int round = 0; round < 16; round++) {
        for (int i = 0; i < BATCH; i++) {
            iov[i].iov_base = bufs[i];
            iov[i].iov_len = DGRAM;
            memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int n = recvmmsg(r->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0) return;
        for (int i = 0; i < n; i++) {
            if (is_sender(r)) on_sender_datagram(r, bufs[i], msgs[i].msg_len, t);
            else on_datagram(r, bufs[i], msgs[i].msg_len, t);
        }
        if (n < BATCH) return;
    }
}

static void send_batch(peer *s, int count, uint64_t t) {
    static uint8_t bufs[BATCH][DGRAM];
    static struct iovec iov[BATCH];
    static struct mmsghdr msgs[BATCH];
    for (int i = 0; i < count; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = make_message(s, bufs[i], t);
        memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        s->sent++;
    }
    int done = 0;
    for (int tries = 0; done < count && tries < 1000; tries++) {
        int n = sendmmsg(s->fd, msgs + done, (unsigned)(count - done), 0);
        if (n > 0) done += n;
        else if (errno != EAGAIN && errno != EINTR && errno != ENOBUFS) break;
    }
    s->sent -= (uint64_t)(count - done);
    sent += (uint64_t)done;
    if (proto == P_ENV) s->next_id -= (uint64_t)(count - done); /* unsent: their ids are not used */
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static double pct(double q) {
    if (!nsamples) return -1;
    size_t i = (size_t)(q * (double)(nsamples - 1));
    return samples[i] / 10.0;
}

static void parse_token(const char *hex, uint8_t *out) {
    for (int i = 0; i < 16 && hex[2 * i] && hex[2 * i + 1]; i++)
        out[i] = (uint8_t)(hexval(hex[2 * i]) * 16 + hexval(hex[2 * i + 1]));
}

static int read_plan(void) {
    char line[256], a[64], b[64], c[64], d[64], e[64];
    uint64_t first_id = 2;
    while (fgets(line, sizeof line, stdin)) {
        d[0] = '-';
        e[0] = '0', e[1] = 0;
        int n = sscanf(line, "%63s %63s %63s %63s %63s", a, b, c, d, e);
        if (n <= 0) continue;
        if (!strcmp(a, "proto")) proto = !strcmp(b, "env") ? P_ENV : !strcmp(b, "text") ? P_TEXT : P_RELAY;
        else if (!strcmp(a, "duration")) duration = atof(b);
        else if (!strcmp(a, "warmup")) warmup = atof(b);
        else if (!strcmp(a, "rate")) rate = atof(b);
        else if (!strcmp(a, "window")) window = atoi(b);
        else if (!strcmp(a, "size")) body_size = atoi(b);
        else if (!strcmp(a, "poll")) poll_mode = atoi(b);
        else if (!strcmp(a, "idle")) idle_mode = atoi(b);
        else if (!strcmp(a, "next_id")) first_id = strtoull(b, NULL, 10);
        else if (!strcmp(a, "sender") || !strcmp(a, "recv")) {
            /* sender|recv FD ROOM TOKENHEX|- SEQ (the room's seq when it joined: its stream
             * starts after it) */
            int is_snd = !strcmp(a, "sender");
            peer *p = is_snd ? (nsnd < MAX_SENDERS ? &snds[nsnd] : NULL) : (nrecv < MAX_PEERS ? &recvs[nrecv] : NULL);
            if (!p) return -1;
            memset(p, 0, sizeof *p);
            if (is_snd) p->index = nsnd++;
            else nrecv++;
            p->fd = atoi(b);
            snprintf(p->room, sizeof p->room, "%.39s", c);
            if (d[0] != '-') parse_token(d, p->token);
            p->expected = strtoull(e, NULL, 10) + 1;
        }
    }
    if (body_size < 40 || body_size > 400) body_size = 100;
    if (duration > 30) duration = 30; /* bounded, whatever the plan says */
    /* Who receives each sender's lines: the receivers in its room and the other senders there. */
    for (int i = 0; i < nsnd; i++) {
        snds[i].next_id = first_id;
        for (int j = 0; j < nrecv; j++) snds[i].members += !strcmp(recvs[j].room, snds[i].room);
        for (int j = 0; j < nsnd && proto == P_ENV; j++) /* envelope senders read their room too */
            snds[i].members += j != i && !strcmp(snds[j].room, snds[i].room);
    }
    int ok = nsnd > 0 && nrecv + nsnd > 1;
    for (int i = 0; i < nsnd; i++) ok = ok && snds[i].fd > 0 && snds[i].members > 0;
    return ok ? 0 : -1;
}

/* A sender's next sends: paced, those due; closed loop, as many as its window allows (at most
 * `window` lines per member in flight and, for the hub, CLIENT_WINDOW unanswered says, as the
 * real client). */
static int due(peer *s, uint64_t t, uint64_t period) {
    int count = 0;
    if (period) {
        while (s->next_send <= t && count < BATCH) s->next_send += period, count++;
        return count;
    }
    uint64_t n = (uint64_t)s->members;
    while (count < BATCH && (s->sent + count) * n < s->got + s->written_off + (uint64_t)window * n &&
           (proto != P_ENV || s->sent + count < s->answered + CLIENT_WINDOW))
        count++;
    return count;
}

/* Closed loop: a sender whose lines stopped arriving for STALL_NS writes the missing off as lost. */
static void write_off(peer *s, uint64_t t) {
    uint64_t n = (uint64_t)s->members;
    if (s->got != s->last_got) s->last_progress = t, s->last_got = s->got;
    if (t - s->last_progress > STALL_NS && s->sent * n > s->got + s->written_off) {
        s->written_off = s->sent * n - s->got;
        s->last_progress = t;
    }
}

static void run_timers(uint64_t t) {
    for (int i = 0; i < nrecv; i++) {
        peer *r = &recvs[i];
        if (r->ack_due && r->ack_due <= t) send_ack(r);
        if (poll_mode && r->poll_due <= t) send_poll(r, t);
    }
    for (int i = 0; i < nsnd; i++)
        if (snds[i].ack_due && snds[i].ack_due <= t) send_ack(&snds[i]);
}

/* Idle mode, paced: the timerfd rings at the next send. */
static void arm(int tfd, uint64_t when) {
    struct itimerspec its = {.it_value = {.tv_sec = (time_t)(when / 1000000000ull),
                                          .tv_nsec = (long)(when % 1000000000ull)}};
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void mark(int at_end) {
    for (int i = 0; i < nsnd; i++) {
        peer *s = &snds[i];
        if (at_end) s->got_at_end = s->got, s->sent_at_end = s->sent;
        else s->got_at_warm = s->got, s->sent_at_warm = s->sent;
    }
    if (at_end) received_at_end = received, sent_at_end = sent;
    else received_at_warm = received, sent_at_warm = sent;
}

static void report(double window_s) {
    uint64_t expected = 0;
    double carried = 0, slowest = -1;
    for (int i = 0; i < nsnd; i++) {
        peer *s = &snds[i];
        expected += s->sent * (uint64_t)s->members;
        double lines = (double)(s->got_at_end - s->got_at_warm) / s->members / window_s;
        carried += lines;
        if (slowest < 0 || lines < slowest) slowest = lines;
    }
    uint64_t refused = 0;
    for (int i = 0; i < nsnd; i++) refused += snds[i].refused;
    printf("{\"sent\": %llu, \"senders\": %d, \"receivers\": %d, \"expected\": %llu, \"received\": %llu, "
           "\"loss\": %.6f, \"deliveries_per_s\": %.1f, \"messages_per_s\": %.1f, \"carried_per_s\": %.1f, "
           "\"slowest_sender_per_s\": %.1f, \"refused\": %llu, \"dups\": %llu, "
           "\"acks\": %llu, \"polls\": %llu, \"sender_in\": %llu, \"samples\": %zu, "
           "\"p50_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": %.1f}\n",
           (unsigned long long)sent, nsnd, nrecv, (unsigned long long)expected, (unsigned long long)received,
           expected ? 1.0 - (double)received / (double)expected : 1.0,
           (double)(received_at_end - received_at_warm) / window_s,
           (double)(sent_at_end - sent_at_warm) / window_s, carried, slowest, (unsigned long long)refused,
           (unsigned long long)dups, (unsigned long long)acks, (unsigned long long)polls,
           (unsigned long long)sender_in, nsamples, pct(0.5), pct(0.99), pct(0.999));
}

/* After the senders stopped: deliveries still owed and still arriving (one within STALL_NS). */
static int tail_pending(uint64_t t, uint64_t last_delivery) {
    uint64_t expected = 0;
    for (int i = 0; i < nsnd; i++) expected += snds[i].sent * (uint64_t)snds[i].members;
    return received < expected && t - last_delivery < STALL_NS;
}

static int run(void) {
    if (read_plan() != 0) {
        fprintf(stderr, "loadgen: bad plan on stdin (need senders, each with someone in its room to receive)\n");
        return 2;
    }
    samples = rate > 0 ? malloc(sizeof(uint32_t) * MAX_SAMPLES) : NULL;
    int ep = epoll_create1(0), tfd = -1;
    struct epoll_event ev = {.events = EPOLLIN};
    for (int i = 0; i < nrecv; i++) {
        ev.data.ptr = &recvs[i];
        epoll_ctl(ep, EPOLL_CTL_ADD, recvs[i].fd, &ev);
    }
    for (int i = 0; i < nsnd; i++) {
        ev.data.ptr = &snds[i];
        epoll_ctl(ep, EPOLL_CTL_ADD, snds[i].fd, &ev);
    }
    uint64_t start = now_ns(), t = start;
    uint64_t warm_at = start + (uint64_t)(warmup * 1e9), end = start + (uint64_t)(duration * 1e9);
    uint64_t stop = end + (uint64_t)(grace * 1e9), next_timers = start;
    uint64_t period = rate > 0 ? (uint64_t)(1e9 / rate) : 0;
    for (int i = 0; i < nsnd; i++) /* paced senders spread over one period */
        snds[i].next_send = start + period * (uint64_t)i / (uint64_t)nsnd, snds[i].last_progress = start;
    if (idle_mode && period) {
        tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
        ev.data.ptr = NULL;
        epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
    }
    if (poll_mode)
        for (int i = 0; i < nrecv; i++) send_poll(&recvs[i], t);
    struct epoll_event evs[256];
    uint64_t last_delivery = now_ns(), last_received = received;
    while ((t = now_ns()) < stop || (t < end + TAIL_NS && tail_pending(t, last_delivery))) {
        if (t >= warm_at && !warm) {
            warm = 1;
            mark(0);
        }
        uint64_t next_send = UINT64_MAX;
        if (t < end) {
            for (int i = 0; i < nsnd; i++) {
                int count = due(&snds[i], t, period);
                if (count) send_batch(&snds[i], count, t);
                if (snds[i].next_send < next_send) next_send = snds[i].next_send;
            }
        } else if (!received_at_end) {
            mark(1);
        }
        int wait_ms = t < end ? 0 : 1;
        if (idle_mode) {
            wait_ms = 1;
            if (tfd >= 0 && t < end) arm(tfd, next_send);
        }
        int ready = epoll_wait(ep, evs, 256, wait_ms);
        t = now_ns();
        for (int i = 0; i < ready; i++) {
            uint64_t ticks;
            if (evs[i].data.ptr == NULL) {
                if (read(tfd, &ticks, sizeof ticks) < 0) continue;
            } else {
                drain((peer *)evs[i].data.ptr, t);
            }
        }
        if (received != last_received) last_delivery = t, last_received = received;
        if (!period)
            for (int i = 0; i < nsnd; i++) write_off(&snds[i], t);
        if (t >= next_timers) {
            next_timers = t + 1000000;
            run_timers(t);
        }
    }
    if (!received_at_end) mark(1);
    /* The acks a real client would still send within ACK_DELAY: the relay ends with nothing
     * unacknowledged, rather than resending the last deliveries to sockets nobody reads. */
    for (int i = 0; i < nrecv; i++)
        if (recvs[i].ack_due) send_ack(&recvs[i]);
    for (int i = 0; i < nsnd; i++)
        if (snds[i].ack_due) send_ack(&snds[i]);
    if (samples) qsort(samples, nsamples, sizeof *samples, cmp_u32);
    report(duration - warmup);
    /* A dead run must never pass for a result. */
    if (sent == 0 || received == 0 || received_at_end <= received_at_warm) {
        fprintf(stderr, "loadgen: dead run: sent %llu, received %llu, %llu in the measured window; "
                "the relay delivered nothing\n", (unsigned long long)sent, (unsigned long long)received,
                (unsigned long long)(received_at_end - received_at_warm));
        return 3;
    }
    if (rate > 0 && nsamples == 0) {
        fprintf(stderr, "loadgen: paced run without a single latency sample after the warm-up\n");
        return 3;
    }
    return 0;
}

/* --- the C reference relay -------------------------------------------------------------------- */

typedef struct {
    char name[40];
    struct sockaddr_in *members;
    int n, cap;
} room;

static room rooms[256];
static int nrooms;

static room *find_room(const char *name, size_t len, int create) {
    if (len == 0 || len >= sizeof rooms[0].name) return NULL;
    for (int i = 0; i < nrooms; i++)
        if (strlen(rooms[i].name) == len && !memcmp(rooms[i].name, name, len)) return &rooms[i];
    if (!create || nrooms == 256) return NULL;
    room *r = &rooms[nrooms++];
    memcpy(r->name, name, len);
    r->name[len] = 0;
    return r;
}

static int relay(int port, double seconds) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int size = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    me.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&me, sizeof me) != 0) {
        perror("loadgen relay: bind 127.0.0.1");
        return 1;
    }
    static uint8_t bufs[BATCH][DGRAM];
    static struct sockaddr_in from[BATCH];
    static struct iovec iov[BATCH];
    static struct mmsghdr in[BATCH], out[1024];
    uint64_t deadline = now_ns() + (uint64_t)(seconds * 1e9);
    while (now_ns() < deadline) {
        for (int i = 0; i < BATCH; i++) {
            iov[i].iov_base = bufs[i];
            iov[i].iov_len = DGRAM - 1;
            memset(&in[i].msg_hdr, 0, sizeof in[i].msg_hdr);
            in[i].msg_hdr.msg_iov = &iov[i];
            in[i].msg_hdr.msg_iovlen = 1;
            in[i].msg_hdr.msg_name = &from[i];
            in[i].msg_hdr.msg_namelen = sizeof from[i];
        }
        int got = recvmmsg(fd, in, BATCH, MSG_WAITFORONE, NULL);
        for (int i = 0; i < got; i++) {
            char *d = (char *)bufs[i];
            size_t len = in[i].msg_len;
            char *sp = len > 4 ? memchr(d + 4, ' ', len - 4) : NULL;
            if (len > 5 && !memcmp(d, "JOIN ", 5)) {
                size_t rl = len - 5;
                while (rl && (d[5 + rl - 1] == '\n' || d[5 + rl - 1] == '\r')) rl--;
                room *r = find_room(d + 5, rl, 1);
                if (!r) continue;
                if (r->n == r->cap) {
                    r->cap = r->cap ? 2 * r->cap : 16;
                    r->members = realloc(r->members, sizeof *r->members * (size_t)r->cap);
                }
                r->members[r->n++] = from[i];
            } else if (len > 4 && !memcmp(d, "MSG ", 4) && sp) {
                room *r = find_room(d + 4, (size_t)(sp - d - 4), 0);
                if (!r) continue;
                struct iovec body = {.iov_base = d, .iov_len = len};
                for (int m = 0; m < r->n; m++) {
                    memset(&out[m % 1024].msg_hdr, 0, sizeof out[0].msg_hdr);
                    out[m % 1024].msg_hdr.msg_name = &r->members[m];
                    out[m % 1024].msg_hdr.msg_namelen = sizeof r->members[m];
                    out[m % 1024].msg_hdr.msg_iov = &body;
                    out[m % 1024].msg_hdr.msg_iovlen = 1;
                    if (m % 1024 == 1023 || m == r->n - 1) {
                        int count = m % 1024 + 1, done = 0;
                        for (int tries = 0; done < count && tries < 1000; tries++) {
                            int s = sendmmsg(fd, out + done, (unsigned)(count - done), 0);
                            if (s > 0) done += s;
                            else if (errno != EAGAIN && errno != EINTR && errno != ENOBUFS) break;
                        }
                    }
                }
            }
        }
    }
    close(fd);
    return 0;
}

/* --- the shared acknowledgement test vector --------------------------------------------------------- */

/* Lines "d MS SEQ = EXPECTED" (a delivery at MS ms), "o MS SEQ = EXPECTED" (the reply to our
 * own say took SEQ) and "t MS = EXPECTED" (timers run at MS ms); prints "d|o|t MS [SEQ] = ACKS"
 * with the acks sent, each "UPTO" or "UPTO:S1,S2", or "-". */
static int ackvector(void) {
    static peer r;
    char line[1024];
    r.fd = -1;
    r.expected = 1;
    while (fgets(line, sizeof line, stdin)) {
        char what;
        unsigned long long ms = 0, seq = 0;
        if (line[0] == '#' || sscanf(line, "%c %llu", &what, &ms) != 2) continue;
        uint64_t t = 1000000000ull + ms * 1000000ull, before = acks;
        uint64_t upto, sack[MAX_SACK];
        char out[1024] = "", *o = out;
        /* the ack that would go out is computed before the call resets the state */
        if ((what == 'd' || what == 'o') && sscanf(line, "%c %llu %llu", &what, &ms, &seq) == 3) {
            receive_seq(&r, seq, t, what == 'o');
            printf("%c %llu %llu =", what, ms, seq);
        } else if (what == 't') {
            if (r.ack_due && r.ack_due <= t) send_ack(&r);
            printf("t %llu =", ms);
        } else {
            continue;
        }
        if (acks == before) {
            printf(" -\n");
            continue;
        }
        int nsack = ack_state(&r, &upto, sack);
        o += sprintf(o, " %llu", (unsigned long long)upto);
        for (int i = 0; i < nsack; i++) o += sprintf(o, "%c%llu", i ? ',' : ':', (unsigned long long)sack[i]);
        printf("%s\n", out);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "acks")) return ackvector();
    if (argc >= 2 && !strcmp(argv[1], "run")) return run();
    if (argc >= 4 && !strcmp(argv[1], "relay")) return relay(atoi(argv[2]), atof(argv[3]));
    fprintf(stderr, "usage: loadgen run < plan | loadgen relay PORT SECONDS | loadgen acks < vector\n");
    return 2;
}
