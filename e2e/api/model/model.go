// Package model is what the plugin's API allows, as a pure function from a
// secret's state and one operation to the states it may leave, and the
// checks package's Model for it. Each secret is its own key. A plugin
// author who changes the API rewrites this package and the traffic; the
// harness stays.
package model

import (
	"fmt"
	"strings"

	"github.com/anishathalye/porcupine"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/checks"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/recorder"
)

// Kind is the kind of an operation.
type Kind int

const (
	Read Kind = iota
	Write
	CAS // a write with cas; CAS 0 creates only
	Delete
)

func (k Kind) String() string {
	return [...]string{"read", "write", "cas", "delete"}[k]
}

// Capability is what a client's token may do to a secret. The server's
// existence check decides whether a write is a create or an update before
// the plugin runs it, so only clients that may do one and not the other see
// whether the plugin honours that decision.
type Capability int

const (
	AsRoot       Capability = iota // may do anything
	AsCreateOnly                   // may write only a secret that does not exist
	AsUpdateOnly                   // may write only a secret that exists
)

func (c Capability) String() string {
	return [...]string{"", " (create-only)", " (update-only)"}[c]
}

// Input is what a client asked of the secret at Path.
type Input struct {
	Path  string
	Kind  Kind
	As    Capability
	CAS   int64
	Token string // unique per write, stored as the secret's only pair
	// SentTwice marks a write that may have been sent twice (see
	// checks.Model's SentTwice): the check gives it a twin, its other
	// send, which may or may not have applied, before it (FirstSend) or
	// also after it (LateSend).
	SentTwice bool
}

// Key is the secret: each is checked on its own.
func (in Input) Key() string { return in.Path }

// Mutates tells whether in may change the secret.
func (in Input) Mutates() bool { return in.Kind != Read }

func (in Input) String() string {
	what := in.Kind.String()
	switch in.Kind {
	case Write:
		what += " " + in.Token
	case CAS:
		what += fmt.Sprintf("=%d %s", in.CAS, in.Token)
	}
	what += in.As.String()
	if in.SentTwice {
		what += " (sent twice)"
	}
	return in.Path + " " + what
}

// Outcome is what an answer means.
type Outcome int

const (
	OK               Outcome = iota // read 200, write 200, delete 204
	Absent                          // read 404 from the plugin
	Mismatch                        // 400 from cas: Version is the current version, 0 when absent
	CreatedMeanwhile                // 400: created by another request since this write began
	DeletedMeanwhile                // 400: deleted by another request since this write began
	Denied                          // 403: the token may not create (or update) this secret
	Ambiguous                       // no answer, or a 5xx: it may or may not have applied
	FirstSend                       // the first send of a write sent twice: it may have applied
	LateSend                        // the other send of a write sent twice, which may also apply after it
	Refused                         // nothing applied: the server refused it before the plugin
	Unexpected                      // anything else fails the test
)

func (o Outcome) String() string {
	return [...]string{"ok", "absent", "cas mismatch", "created meanwhile", "deleted meanwhile", "denied",
		"ambiguous", "may have applied", "may have applied, also later", "refused", "unexpected"}[o]
}

// Output is what a client got.
type Output struct {
	Outcome Outcome
	Version int64
	Token   string
}

// Definite tells whether the client learned what happened.
func (o Output) Definite() bool { return o.Outcome < Ambiguous }

// twin tells whether o is the other send of a write sent twice.
func (o Output) twin() bool { return o.Outcome == FirstSend || o.Outcome == LateSend }

// Acknowledged tells whether the plugin said it was done.
func (o Output) Acknowledged() bool { return o.Outcome == OK }

func (o Output) String() string {
	got := o.Outcome.String()
	if o.Outcome == OK && o.Version > 0 || o.Outcome == Mismatch {
		got += fmt.Sprintf(" v%d", o.Version)
	}
	if o.Token != "" {
		got += " " + o.Token
	}
	return got
}

// state is one secret as the API documents it: absent, or a version and
// the token of the write that made it. resent lists the writes sent twice
// whose second send has taken effect: a first send cannot come after.
type state struct {
	exists  bool
	version int64
	token   string
	resent  string
}

// applied is the state after in took effect on s; nil when in cannot apply
// to s.
func applied(s state, in Input) []state {
	next := func(v int64) state {
		return state{exists: true, version: v, token: in.Token, resent: s.resent}
	}
	switch {
	case in.Kind == Delete:
		return []state{{resent: s.resent}}
	case in.Kind == CAS && (s.version != in.CAS || s.exists != (in.CAS > 0)):
		return nil
	case !s.exists && in.As == AsUpdateOnly, s.exists && in.As == AsCreateOnly:
		return nil
	case !s.exists:
		return []state{next(1)}
	}
	return []state{next(s.version + 1)}
}

// step is the plugin's documented behaviour for one operation: every state
// the secret may be in after it, none if the answer is impossible from s.
func step(s state, in Input, out Output) []state {
	if in.SentTwice && !out.twin() {
		s.resent += "," + in.Token
	}
	same := []state{s}
	switch out.Outcome {
	case FirstSend:
		if strings.Contains(s.resent+",", ","+in.Token+",") {
			return same // too late: its second send has been taken
		}
		return append(same, applied(s, in)...)
	case LateSend, Ambiguous:
		return append(same, applied(s, in)...)
	case Absent:
		if !s.exists {
			return same
		}
	case OK:
		if in.Kind == Read {
			if s.exists && s.version == out.Version && s.token == out.Token {
				return same
			}
			return nil
		}
		for _, after := range applied(s, in) {
			if in.Kind == Delete || after.version == out.Version {
				return []state{after}
			}
		}
	case Mismatch:
		if s.exists == (out.Version > 0) && s.version == out.Version && s.version != in.CAS {
			return same
		}
	case CreatedMeanwhile:
		// Only a write the server authorised as a create says so.
		if s.exists && in.As != AsUpdateOnly {
			return same
		}
	case DeletedMeanwhile:
		if !s.exists && in.As != AsCreateOnly {
			return same
		}
	case Denied:
		// The server's existence check saw the secret in the state the token may not write.
		if in.As == AsCreateOnly && s.exists || in.As == AsUpdateOnly && !s.exists {
			return same
		}
	}
	return nil
}

// Secrets is the checks package's Model of the API.
type Secrets struct{}

var _ checks.Model = Secrets{}

// Porcupine is the model one secret's history is checked against.
func (Secrets) Porcupine() porcupine.Model {
	m := porcupine.NondeterministicModel{
		Init: func() []any { return []any{state{}} },
		Step: func(s, in, out any) []any {
			var next []any
			for _, n := range step(s.(state), in.(Input), out.(Output)) {
				next = append(next, n)
			}
			return next
		},
		DescribeOperation: func(in, out any) string { return fmt.Sprintf("%v -> %v", in, out) },
		DescribeState: func(s any) string {
			if st := s.(state); st.exists {
				return fmt.Sprintf("v%d %s", st.version, st.token)
			}
			return "absent"
		},
		DescribeOperationMetadata: func(info any) string { return fmt.Sprint(info) },
	}
	return m.ToModel()
}

// Judge checks every answer but those that had no effect: refused before
// the plugin, or a read without an answer.
func (Secrets) Judge(o recorder.Op) checks.Judgement {
	in, out := o.In.(Input), o.Out.(Output)
	switch {
	case out.Outcome == Unexpected:
		return checks.Unexpected
	case out.Outcome == Refused, in.Kind == Read && out.Outcome == Ambiguous:
		return checks.Ignore
	}
	return checks.Check
}

// SentTwice marks o's write as sent twice, and makes its other send.
func (Secrets) SentTwice(o recorder.Op, late bool) (other, marked recorder.Op) {
	in := o.In.(Input)
	in.SentTwice = true
	marked = o
	marked.In = in
	other = marked
	other.Out = Output{Outcome: FirstSend}
	if late {
		other.Out = Output{Outcome: LateSend}
	}
	return other, marked
}

// FromOwnState: a read, and a 403, whose create-or-update decision (an
// existence check, itself a read) the node made, may come from the state
// of the node that answered.
func (Secrets) FromOwnState(o recorder.Op) bool {
	return o.In.(Input).Kind == Read || o.Out.(Output).Outcome == Denied
}

// Stale judges a read, or a 403 to a create-only write, that a node gave
// from its own state.
func (Secrets) Stale(o recorder.Op, history []recorder.Op) (stale, impossible bool) {
	return overwritten(o, history), impossibleStaleAnswer(o, history)
}

// isWrite tells whether w is a write, with cas or without.
func isWrite(w recorder.Op) bool {
	k := w.In.(Input).Kind
	return k == Write || k == CAS
}

// overwritten tells whether read o returned a state that an acknowledged
// write had replaced before o was sent: a stale read, whatever the order of
// the operations that overlap it.
func overwritten(o recorder.Op, history []recorder.Op) bool {
	in, out := o.In.(Input), o.Out.(Output)
	if in.Kind != Read || out.Outcome != OK {
		return false
	}
	made := writeOf(o, history)
	if made == nil || !made.Out.Definite() {
		return false
	}
	for _, w := range history {
		win := w.In.(Input)
		if win.Path == in.Path && win.Kind != Read && win.Token != out.Token &&
			w.Out.(Output).Outcome == OK && w.Call > made.Return && w.Return < o.Call {
			return true
		}
	}
	return false
}

// writeOf is the write whose token read o returned, nil if none wrote it there.
func writeOf(o recorder.Op, history []recorder.Op) *recorder.Op {
	in, out := o.In.(Input), o.Out.(Output)
	for i := range history {
		w := &history[i]
		if win := w.In.(Input); win.Path == in.Path && win.Token == out.Token && win.Kind != Read && !w.Out.(Output).twin() {
			return w
		}
	}
	return nil
}

// VersionsBehind is how many versions older than the newest one
// acknowledged before it was sent read o returned.
func VersionsBehind(history []recorder.Op, o recorder.Op) int64 {
	var newest int64
	for _, w := range history {
		if w.In.(Input).Path == o.In.(Input).Path && isWrite(w) && w.Out.(Output).Outcome == OK && w.Return < o.Call {
			newest = max(newest, w.Out.(Output).Version)
		}
	}
	return newest - o.Out.(Output).Version
}

// impossibleStaleAnswer holds a read a node answered from its own state to
// what it may return, and a 403 to a create-only write to a state the
// secret was once in: an older state of that secret, never a token no
// write sent there before the read returned, nor a version other than the
// one that write made, nor, for a write without an answer, above the
// highest acknowledged.
func impossibleStaleAnswer(o recorder.Op, history []recorder.Op) bool {
	in, out := o.In.(Input), o.Out.(Output)
	if out.Outcome == Denied && in.As == AsCreateOnly {
		// Denied as existing: some write may have made it exist before.
		for _, w := range history {
			if w.In.(Input).Path == in.Path && isWrite(w) && w.Call < o.Return && w.Out.(Output).Outcome != Denied {
				return false
			}
		}
		return true
	}
	if in.Kind != Read || out.Outcome != OK {
		return false
	}
	made := writeOf(o, history)
	switch {
	case made == nil || made.Call > o.Return:
		return true
	case made.Out.(Output).Outcome == OK && !made.In.(Input).SentTwice:
		return made.Out.(Output).Version != out.Version
	}
	var acknowledged, unanswered int64
	for _, w := range history {
		if w.In.(Input).Path == in.Path && isWrite(w) && w.Call < o.Return {
			if w.Out.(Output).Outcome == OK {
				acknowledged = max(acknowledged, w.Out.(Output).Version)
			} else if !w.Out.Definite() {
				unanswered += 2 // it may have landed twice
			}
		}
	}
	return out.Version < 1 || out.Version > acknowledged+unanswered
}
