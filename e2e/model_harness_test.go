package e2e

import (
	"fmt"
	"strings"

	"github.com/anishathalye/porcupine"
)

// The model: what the plugin's API allows, as a pure function from a
// secret's state and one operation to the states it may leave. A plugin
// author who changes the API replaces this file and the operations of
// traffic_harness_test.go; the cluster, faults, recorder and checks stay.

type opKind int

const (
	opRead opKind = iota
	opWrite
	opCAS // a write with cas; CAS 0 creates only
	opDelete
)

func (k opKind) String() string {
	return [...]string{"read", "write", "cas", "delete"}[k]
}

// capability is what a client's token may do to a secret. Vault's existence
// check decides whether a write is a create or an update before the plugin
// runs it, so only clients that may do one and not the other see whether
// the plugin honours that decision.
type capability int

const (
	asRoot       capability = iota // may do anything
	asCreateOnly                   // may write only a secret that does not exist
	asUpdateOnly                   // may write only a secret that exists
)

func (c capability) String() string {
	return [...]string{"", " (create-only)", " (update-only)"}[c]
}

// opInput is what a client asked. Path is the partition of the check: every
// secret is its own register.
type opInput struct {
	Path  string
	Kind  opKind
	As    capability
	CAS   int64
	Token string // unique per write, stored as the secret's only pair
	// Sender is the recorder's client that sent it, for the progress check;
	// the racer's bursts are negative.
	Sender int
	// SentTwice marks a write that may have been sent twice: in flight when
	// a plugin process exited (Vault sends it to a new process once more), or
	// through a standby while the active node changed (the standby redirects
	// it to the new one). The check gives it a twin, its first send, which
	// may or may not have applied before the second.
	SentTwice bool
}

type outcome int

const (
	outOK               outcome = iota // read 200, write 200, delete 204
	outAbsent                          // read 404 from the plugin
	outMismatch                        // 400 from cas: Version is the current version, 0 when absent
	outCreatedMeanwhile                // 400: created by another request since this write began
	outDeletedMeanwhile                // 400: deleted by another request since this write began
	outDenied                          // 403: the token may not create (or update) this secret
	outAmbiguous                       // no answer, or a 5xx: it may or may not have applied
	outFirstSend                       // the first send of a write Vault sent twice: it may have applied
	outRefused                         // nothing applied: see refusedBeforeThePlugin
	outUnexpected                      // anything else fails the test
)

func (o outcome) String() string {
	return [...]string{"ok", "absent", "cas mismatch", "created meanwhile", "deleted meanwhile", "denied",
		"ambiguous", "may have applied", "refused", "unexpected"}[o]
}

// definite tells whether the client learned what happened.
func (o outcome) definite() bool { return o < outAmbiguous }

type opOutput struct {
	Outcome outcome
	Version int64
	Token   string
}

// secretState is one secret as the API documents it: absent, or a version
// and the token of the write that made it. resent lists the writes sent
// twice whose second send has taken effect: a first send cannot come after.
type secretState struct {
	exists  bool
	version int64
	token   string
	resent  string
}

// applied is the state after in took effect on s; nil when in cannot apply
// to s.
func applied(s secretState, in opInput) []secretState {
	next := func(v int64) secretState {
		return secretState{exists: true, version: v, token: in.Token, resent: s.resent}
	}
	switch {
	case in.Kind == opDelete:
		return []secretState{{resent: s.resent}}
	case in.Kind == opCAS && (s.version != in.CAS || s.exists != (in.CAS > 0)):
		return nil
	case !s.exists && in.As == asUpdateOnly, s.exists && in.As == asCreateOnly:
		return nil
	case !s.exists:
		return []secretState{next(1)}
	}
	return []secretState{next(s.version + 1)}
}

// step is the plugin's documented behaviour for one operation: every state
// the secret may be in after it, none if the answer is impossible from s.
func step(s secretState, in opInput, out opOutput) []secretState {
	if in.SentTwice && out.Outcome != outFirstSend {
		s.resent += "," + in.Token
	}
	same := []secretState{s}
	switch out.Outcome {
	case outFirstSend:
		if strings.Contains(s.resent+",", ","+in.Token+",") {
			return same // too late: its second send has been taken
		}
		return append(same, applied(s, in)...)
	case outAmbiguous:
		return append(same, applied(s, in)...)
	case outAbsent:
		if !s.exists {
			return same
		}
	case outOK:
		if in.Kind == opRead {
			if s.exists && s.version == out.Version && s.token == out.Token {
				return same
			}
			return nil
		}
		for _, after := range applied(s, in) {
			if in.Kind == opDelete || after.version == out.Version {
				return []secretState{after}
			}
		}
	case outMismatch:
		if s.exists == (out.Version > 0) && s.version == out.Version && s.version != in.CAS {
			return same
		}
	case outCreatedMeanwhile:
		// Only a write Vault authorised as a create says so.
		if s.exists && in.As != asUpdateOnly {
			return same
		}
	case outDeletedMeanwhile:
		if !s.exists && in.As != asCreateOnly {
			return same
		}
	case outDenied:
		// Vault's existence check saw the secret in the state the token may not write.
		if in.As == asCreateOnly && s.exists || in.As == asUpdateOnly && !s.exists {
			return same
		}
	}
	return nil
}

// secretModel is the model porcupine checks one secret's history against.
var secretModel = porcupine.NondeterministicModel{
	Init: func() []interface{} { return []interface{}{secretState{}} },
	Step: func(state, input, output interface{}) []interface{} {
		var next []interface{}
		for _, s := range step(state.(secretState), input.(opInput), output.(opOutput)) {
			next = append(next, s)
		}
		return next
	},
	DescribeOperation: func(input, output interface{}) string {
		return describe(input.(opInput), output.(opOutput))
	},
	DescribeState: func(state interface{}) string {
		s := state.(secretState)
		if !s.exists {
			return "absent"
		}
		return fmt.Sprintf("v%d %s", s.version, s.token)
	},
	DescribeOperationMetadata: func(info interface{}) string { return fmt.Sprint(info) },
}

// describe writes one operation as the checker's reports show it.
func describe(in opInput, out opOutput) string {
	what := in.Kind.String()
	switch in.Kind {
	case opWrite:
		what += " " + in.Token
	case opCAS:
		what += fmt.Sprintf("=%d %s", in.CAS, in.Token)
	}
	what += in.As.String()
	if in.SentTwice {
		what += " (sent twice)"
	}
	got := out.Outcome.String()
	switch {
	case out.Outcome == outOK && in.Kind != opDelete, out.Outcome == outMismatch:
		got += fmt.Sprintf(" v%d %s", out.Version, out.Token)
	}
	return fmt.Sprintf("%s %s -> %s", in.Path, what, got)
}
