"""Every size, rate and timeout of Roomcast, in one place.

Both the hub and the client import their limits from here, so that a change of
policy is one edit and the README's table of limits stays true.  Sizes are in
bytes, times in seconds (floats, as trio's clock gives them).
"""

from __future__ import annotations

from typing import Final

# --- wire ---------------------------------------------------------------------------------

#: Default UDP port: the port of the textbook UDP chat programs.
DEFAULT_PORT: Final = 9999
#: Default address the hub binds and the client talks to (loopback only by default).
DEFAULT_HOST: Final = "127.0.0.1"

#: Largest datagram the hub reads or sends.  Fits one 1500-byte Ethernet frame after IP/UDP
#: headers, so nothing relies on IP fragmentation.
MAX_DATAGRAM: Final = 1400
#: Largest reply to a plain-text client: the textbook server twin reads with recvfrom(1024).
MAX_TEXT_REPLY: Final = 1024
#: Largest line ``roomcast --plain`` sends, for the same reason (a longer one is cut, between
#: two characters: the textbook server decodes what it reads strictly).
MAX_TEXT_LINE: Final = 1024
#: Largest chat line (UTF-8 bytes) a user may send.  Leaves room for the envelope around it.
MAX_BODY: Final = 1000

#: Envelope magic: 0xC1 is never valid in UTF-8 and never used by msgpack, so an envelope can
#: not be read as text nor text as an envelope.
ENVELOPE_MAGIC: Final = 0xC1
#: Version of the envelope this code speaks.
ENVELOPE_VERSION: Final = 1

#: Per-container limits handed to msgpack's unpacker (defence against huge declared lengths).
MAX_STR: Final = 1024
MAX_BIN: Final = 64
MAX_ARRAY: Final = 64
MAX_MAP: Final = 16

# --- names ----------------------------------------------------------------------------------

#: Nicks and room names: letters and digits of any script (PRECIS UsernameCaseMapped,
#: RFC 8265), '.', '_' and '-', see shared/names.py.  Each has a limit in characters (what a
#: person sees) and in bytes of UTF-8 (what the wire and the screen carry): 24 CJK
#: characters are 72 bytes, so the byte limit, not the character one, bounds such a nick.
MAX_NICK: Final = 24
MAX_NICK_BYTES: Final = 64
MAX_ROOM: Final = 32
MAX_ROOM_BYTES: Final = 96
NAME_RULE: Final = (
    "letters and digits of any script, '.', '_' or '-', starting with a letter or digit "
    "(a room name may start with '#'), no spaces; "
    f"at most {MAX_NICK} characters and {MAX_NICK_BYTES} bytes for a nick, "
    f"{MAX_ROOM} characters and {MAX_ROOM_BYTES} bytes for a room"
)
#: Room a plain-text client lands in.
DEFAULT_ROOM: Final = "lobby"
#: Nick prefix of a plain-text client (the rest is its source port).
GUEST_PREFIX: Final = "guest-"

# --- caps -------------------------------------------------------------------------------------

MAX_CLIENTS: Final = 20_000
MAX_CLIENTS_PER_ADDRESS_HOST: Final = 64
MAX_ROOMS: Final = 5_000
MAX_ROOMS_PER_CLIENT: Final = 16
MAX_MEMBERS_PER_ROOM: Final = 1_000
#: New rooms one client may create: a burst, then one every 30 s (so nobody can use up
#: MAX_ROOMS alone; empty rooms take ROOM_EXPIRY to go away).
ROOM_CREATE_BURST: Final = 10
ROOM_CREATE_RATE: Final = 1 / 30

# --- text clients ------------------------------------------------------------------------------

#: Room lines kept for a text client between two of its lines (newest kept).
TEXT_QUEUE_LINES: Final = 50

# --- reliability --------------------------------------------------------------------------------

#: Requests a client may have in flight (sent, not yet answered).
CLIENT_WINDOW: Final = 32
#: Deliveries the hub holds for one member (in flight or queued) before it drops it as a slow
#: consumer: about half a minute of a busy room.
MEMBER_WINDOW: Final = 4096
#: Bytes the hub holds for one member before it drops it as a slow consumer.
MEMBER_WINDOW_BYTES: Final = 2 * 1024 * 1024
#: A member holding more than MEMBER_WINDOW deliveries is dropped only once its acks have made
#: no progress for this long: one that still receives and acknowledges, only slowly (a busy
#: machine), catches up instead.  Past MEMBER_WINDOW_HARD deliveries (or MEMBER_WINDOW_BYTES)
#: it is dropped at once, so memory stays bounded.
ACK_STALL_TIMEOUT: Final = 10.0
MEMBER_WINDOW_HARD_FACTOR: Final = 4
#: Deliveries in flight to one member at once; the rest wait in its queue until acks make room.
MEMBER_IN_FLIGHT: Final = 256
#: Most datagrams resent to one peer when its retransmission timer fires.
RETRANSMIT_BURST: Final = 16
#: Selective-ack entries in one ack (the lowest seqs received beyond the cumulative point; the
#: hub resends the holes below the highest at once).  48 reach far enough past the holes that
#: a 10% loss opens in a window of 256 for them to be repaired in one round trip.
MAX_SACK: Final = 48
#: Retransmission backoff (shared.reliable.backoff_timeout, for requests and deliveries alike):
#: each resend of the same data doubles the timeout, at most this many times, and never
#: beyond MAX_BACKOFF_TIMEOUT.
MAX_BACKOFF_DOUBLINGS: Final = 6
#: Initial retransmission timeout before any RTT is measured (RFC 9002 §6.2.2 uses 333 ms).
INITIAL_RTO: Final = 0.3
MIN_RTO: Final = 0.05
MAX_RTO: Final = 3.0
MAX_BACKOFF_TIMEOUT: Final = 4 * MAX_RTO
#: Delay before a receiver sends a cumulative ack (QUIC max_ack_delay), and how many deliveries
#: trigger an immediate one (QUIC's ack-eliciting threshold). A gap or a duplicate is acknowledged
#: at once whatever these say, so loss is reported as soon as it is seen. Why 32 and not 8: every
#: ack costs the hub a datagram to receive and about 3 µs of Python, and in a busy room acks were
#: most of the datagrams it received (12.5 of the 13.5 per message in a room of 100); at 32 they
#: are a quarter of that (0.031 instead of 0.125 per delivery). 32 still gives 8 acks per in-flight
#: window (MEMBER_IN_FLIGHT = 256), so the window slides smoothly and one lost ack holds back an
#: eighth of it until the next; RTT samples stay plentiful (one per 32 deliveries, and at least one
#: per ACK_DELAY while anything arrives), and the retransmission timer does not depend on them:
#: ACK_DELAY bounds how late an ack comes, and the RTO allows for it (never below MIN_RTO = 50 ms >
#: ACK_DELAY). The real client reads in batches and sends the newest ack of a batch only
#: (``shared.inbox``), so under load it acks about once per batch anyway; what this sets is how
#: often a receiver that reads each datagram at once acks (the benchmark's generator). Larger
#: values save little more (64: 0.016 instead of 0.031 acks per delivery) while each lost ack would
#: hold back a quarter of the window.
ACK_DELAY: Final = 0.02
ACK_EVERY: Final = 32

#: Datagrams the client reads in one go; and how long it lets datagrams queue up after a
#: batch before it reads again, so a busy room costs one wake-up per batch, not per line
#: (2 ms: far below what a person notices, and a tenth of ACK_DELAY).
CLIENT_RECV_BATCH: Final = 256
CLIENT_COALESCE: Final = ACK_DELAY
#: The client's socket receive buffer: a whole in-flight window (MEMBER_IN_FLIGHT datagrams
#: at about 1 KiB of kernel memory each) fits while the client waits for a CPU.
CLIENT_RCVBUF: Final = 1024 * 1024
#: Characters a piped client keeps for a stdout (or stderr) slow to read, while it goes on
#: receiving and acknowledging (about 40,000 room lines).  When they are full it takes no more
#: room lines (it leaves them unacknowledged, for the hub to resend) until they are written: no
#: line is dropped; the hub drops it as too slow only if the room runs past MEMBER_WINDOW and
#: ACK_STALL_TIMEOUT meanwhile.  See client/output.py.
PIPED_OUTPUT_BUFFER: Final = 4 * 1024 * 1024
#: After Ctrl-C (or SIGTERM), how long a piped client still tries to write what it has shown.
PIPED_EXIT_DRAIN: Final = 2.0

#: How many times a client asks again about one gap in what it missed after a rejoin (a
#: replayed message is a single datagram and may be lost; a gap the hub answers with nothing
#: replayed is settled at once).  Beyond that the gap stays.  Sized for loss: a gap survives N
#: asks with probability loss**N, and at 15% loss 5 asks left 1 gap in 13,000 (a property test
#: found one), 20 leave 1 in 3e16; each ask is one round trip, and only a gap the hub keeps
#: replaying into a path that drops it spends them all.
CATCH_UP_ASKS: Final = 20

#: For this long after a welcome, an unknown-session error is taken as the late answer to a
#: datagram of the session before (the network delayed it), not as a hub that forgot us.
STALE_AFTER_WELCOME: Final = 1.0

# --- liveness ----------------------------------------------------------------------------------

#: A client pings after this long without hearing from the hub.
PING_INTERVAL: Final = 5.0
#: The hub evicts an envelope client silent for this long.
SESSION_TIMEOUT: Final = 30.0
#: The hub evicts a plain-text client silent for this long (a person typing at the textbook
#: client can be slow; any line renews it).
TEXT_SESSION_TIMEOUT: Final = 600.0
#: A client gives up on an unanswered hub after this long (and reconnects or exits).
HUB_SILENCE_TIMEOUT: Final = 10.0
#: Time the client waits for a first answer before it says the hub is unreachable.
CONNECT_TIMEOUT: Final = 5.0
#: After losing a hub it was connected to (shutdown, crash, silence), how long a client keeps
#: trying to reconnect before it gives up and exits.
RECONNECT_GIVE_UP: Final = 30.0
#: Most hubs in one client's list (``roomcast --hub A,B,...``).
MAX_HUBS: Final = 16
#: With a list of hubs (``--hub A,B``), a client pings after this long without hearing from its
#: hub, and moves on to the next hub after ``FAILOVER_SILENCE_TIMEOUT`` without a word, so it is
#: on another hub well within 10 s of its hub's death (a single hub keeps the calmer figures above).
FAILOVER_PING_INTERVAL: Final = 1.5
FAILOVER_SILENCE_TIMEOUT: Final = 5.0
#: With a list of hubs, how long the client waits for a hub's first answer (challenge, welcome
#: or error) before it tries the next one in the list.
HUB_ANSWER_TIMEOUT: Final = 2.0

# --- address validation ------------------------------------------------------------------------

#: An address not yet validated receives at most this many times the bytes it sent.
AMPLIFICATION_FACTOR: Final = 3
#: Cookie time bucket; a cookie is accepted in its bucket and the next one.
COOKIE_BUCKET: Final = 30.0
#: Length of a session token (128 bits).
TOKEN_BYTES: Final = 16
#: A client pads its first hello to this size so the hub's challenge fits the 3x budget.
HELLO_PAD_TO: Final = 64

# --- flood control -------------------------------------------------------------------------------

#: Token bucket per session: a burst, then a steady rate in messages per second.
FLOOD_BURST: Final = 20
FLOOD_RATE: Final = 10.0
#: Token bucket per source IP (all its sessions together): this many sessions' worth of the
#: per-session burst and rate.
ADDRESS_FLOOD_SESSIONS: Final = 10

# --- hub -------------------------------------------------------------------------------------------

#: Datagrams the hub reads from the socket in one system call (recvmmsg), and the most such
#: calls before it sends what they produced: a message to a room of 1,000 brings back about
#: 125 acks, more than one batch.
RECV_BATCH: Final = 64
RECV_ROUNDS: Final = 8
#: Bytes of kernel buffer the hub asks for on its socket, each way (hub.udpsocket): about
#: 40,000 small acks, so a room of 1,000 acknowledging every 20 ms does not overflow it
#: while the hub waits half a second for a core.  Forced past net.core.rmem_max where the
#: hub may (CAP_NET_ADMIN), else what that ceiling allows.
HUB_SOCKET_BUFFER: Final = 16 * 1024 * 1024
#: Seconds between two stats lines in the log.
STATS_INTERVAL: Final = 60.0
#: Seconds the hub keeps delivering after SIGTERM before it exits.
DRAIN_SECONDS: Final = 2.0
#: Room messages kept per room for history and catch-up.
HISTORY_PER_ROOM: Final = 200
#: A room with no members and no topic is forgotten, history and all, this long after its
#: last event; the hub looks for such rooms every ROOM_SWEEP_INTERVAL.
ROOM_EXPIRY: Final = 3600.0
ROOM_SWEEP_INTERVAL: Final = 60.0

# --- history on disk (--data-dir) ----------------------------------------------------------------

#: Seconds between two commits of room history to disk: a kill -9 loses at most about this
#: much (plus one commit in progress).
STORE_INTERVAL: Final = 0.1
#: History records waiting for the disk; beyond this the hub drops (and counts) new ones
#: rather than wait: a slow disk must never stall the hub loop.
STORE_BACKLOG: Final = 10_000
#: Rows a room may gain on disk beyond HISTORY_PER_ROOM before the store trims it.
STORE_TRIM_SLACK: Final = 50
#: After a restart from disk, room seqs go on this far beyond the last stored one.  Records
#: not yet on disk at a crash (at most two backlogs' worth) or dropped had seqs that clients
#: may have seen: new messages must never reuse them under the same history epoch.
RESTORE_SEQ_SKIP: Final = 1_000_000

# --- monitor (HTTP) --------------------------------------------------------------------------------

#: Request line and headers of one monitoring request; a GET needs a few hundred bytes.
MONITOR_MAX_REQUEST: Final = 8192
#: Seconds a monitoring client has to send its request, and to take the response.
MONITOR_READ_TIMEOUT: Final = 5.0
MONITOR_WRITE_TIMEOUT: Final = 5.0
#: Open monitoring connections; beyond this the hub answers 503 at once (fds are finite).
MONITOR_MAX_CONNECTIONS: Final = 32
#: Clients listed by /connz unless ?limit= says otherwise.
MONITOR_CONNZ_LIMIT: Final = 1000

# --- cluster mode (--nats) ---------------------------------------------------------------------

#: While NATS is unreachable, requests are answered "unavailable" and tried again after this.
CLUSTER_RETRY_AFTER: Final = 1.0
#: JetStream API and publish timeout: the default 5 s makes a leader election stall twice as
#: long (issue 12 measured 11 s); an election takes about 5 s, retried in 1 s steps.
NATS_API_TIMEOUT: Final = 1.0
#: At start, how long a hub waits for JetStream to answer (a cluster started together with its
#: hubs elects its leaders first), and how often it asks meanwhile.
JETSTREAM_START_WAIT: Final = 30.0
JETSTREAM_START_RETRY: Final = 0.5
#: A proposed event not confirmed by JetStream within this long is given up (its requester is
#: told); a retried publish carries the same Nats-Msg-Id, so it is never stored twice.
CLUSTER_PUBLISH_GIVE_UP: Final = 20.0
#: JetStream keeps the duplicate-detection window this long (Nats-Msg-Id dedupe).
NATS_DUPLICATE_WINDOW: Final = 120.0
#: Events crossing between the NATS thread and the hub loop in one batch, at most.
CLUSTER_BATCH: Final = 256
#: Every hub publishes a heartbeat (its members per room) this often; a hub silent for
#: HUB_DEAD_AFTER is taken as dead (its members are announced as left after the session
#: timeout unless they come back through another hub).
HUB_HEARTBEAT: Final = 1.0
HUB_DEAD_AFTER: Final = 3.5
#: Client line numbers (``Say.mid``) remembered per hub, so a line resent through another hub
#: after a failover is carried out once (a few minutes of a busy cluster).
CLUSTER_MIDS_KEPT: Final = 100_000
#: A line answered "not-delivered" (the cluster did not confirm it in time) is held and resent
#: under the same ``mid`` after NOT_DELIVERED_PAUSE, at most NOT_DELIVERED_TRIES times and only
#: within NOT_DELIVERED_WITHIN of the first such answer: with the hub's 20 s give-up, every try
#: stays inside JetStream's duplicate window (NATS_DUPLICATE_WINDOW), so it is stored once.
NOT_DELIVERED_PAUSE: Final = 1.0
NOT_DELIVERED_TRIES: Final = 3
NOT_DELIVERED_WITHIN: Final = 60.0
#: Ids of client lines a hub's NATS side consumed lately, so that a resend of one (after
#: "not-delivered", or through another hub) proposed before the hub loop heard of the first is
#: not published again, not even inside a batch (JetStream dedupes per message).
CLUSTER_RECENT_IDS_KEPT: Final = 10_000
#: A room claim that meets a look claimed by a claim still in progress (another hub taking the
#: looks of a look-alike name that may yet lose) waits this long, in steps of
#: ROOM_CLAIM_STEP, for it to end, so that a refusal names a room that was made.
ROOM_CLAIM_SETTLE_WAIT: Final = 2.0
ROOM_CLAIM_STEP: Final = 0.02
#: A room's name claim the rooms bucket does not answer (its leader being elected, NATS lost)
#: is tried again this often, for as long as it takes; the room's requests wait meanwhile.
ROOM_CLAIM_RETRY: Final = 0.5
