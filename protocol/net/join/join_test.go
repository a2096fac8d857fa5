package join

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
)

func TestPartyIDIsStableAndRoleTagged(t *testing.T) {
	t.Parallel()
	id := peer.ID("some peer")
	s, v := PartyID(wire.RoleSolver, id), PartyID(wire.RoleVerifier, id)
	if s != PartyID(wire.RoleSolver, id) || len(s) != 13 || len(v) != 13 || s[0] != 's' || v[0] != 'v' || s[1:] != v[1:] {
		t.Fatalf("party IDs %q %q", s, v)
	}
}

func TestNoticeAndUnregistered(t *testing.T) {
	t.Parallel()
	if n := Notice(&wire.Ack{OK: true, Error: "no bond"}); n != "no bond" {
		t.Fatalf("notice %q", n)
	}
	if n := Notice(&wire.Ack{Error: "refused"}); n != "" {
		t.Fatalf("a refusal read as a notice: %q", n)
	}
	if !IsUnregistered(fmt.Errorf("%w: node: %s", p2p.ErrRemote, SayHello)) {
		t.Fatal("the coordinator's 'say hello again' not recognised")
	}
	for _, err := range []error{nil, errors.New(SayHello), fmt.Errorf("%w: busy", p2p.ErrRemote)} {
		if IsUnregistered(err) {
			t.Fatalf("%v read as unregistered", err)
		}
	}
	if _, err := Coordinator("/ip4/127.0.0.1/tcp/1"); !errors.Is(err, ErrCoordinatorAddr) {
		t.Fatalf("an address without /p2p: %v", err)
	}
}

// logRecords collects the messages logged.
type logRecords struct {
	mu   sync.Mutex
	msgs []string
	ch   chan string
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.msgs = append(l.msgs, r.Message)
	l.mu.Unlock()
	select {
	case l.ch <- r.Message:
	default:
	}
	return nil
}
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecords) WithGroup(string) slog.Handler      { return l }

// TestJoinAnswersHelloAndRejoinsWhenLost: a member joins a coordinator
// that accepts with a notice, and says hello again when told it is lost.
func TestJoinAnswersHelloAndRejoinsWhenLost(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	coord, err := p2p.New(ctx, p2p.WithListen("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer coord.Close()
	coord.Handle(wire.ControlProtocol, func(_ context.Context, _ *wire.Envelope, _ wire.Message, r *p2p.Responder) error {
		return r.Reply(&wire.Ack{OK: true, Error: "no bond yet"})
	}, wire.TypeHello)
	n, err := p2p.New(ctx, p2p.WithListen("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	log := &logRecords{ch: make(chan string, 16)}
	joined := make(chan string, 4)
	m, err := New(n, Config{Addr: coord.Addrs()[0], Hello: func() *wire.Hello { return &wire.Hello{Role: wire.RoleSolver} }, Logger: slog.New(log),
		Joined: func(s string) { joined <- s }})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if m.Notice() != "no bond yet" || m.Joins() != 1 || <-joined != "no bond yet" {
		t.Fatalf("notice %q after %d joins", m.Notice(), m.Joins())
	}
	done := make(chan error, 1)
	go func() { done <- m.Keep(ctx) }()
	m.Lost()
	if n := <-joined; n != "no bond yet" || m.Joins() != 2 {
		t.Fatalf("after Lost: notice %q, %d joins", n, m.Joins())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if !strings.Contains(strings.Join(log.msgs, "|"), EventLost) {
		t.Fatalf("no %q event: %v", EventLost, log.msgs)
	}
}
