// Package apicases holds the engine's HTTP API as data: each Case is a short
// sequence of requests against one fresh mount, each with the answer it must
// get. The unit tests run every case in process, and the e2e tests run them
// through a real Vault and OpenBao, so that both suites check one definition
// and a bug that shows only in a real server fails a named case.
//
// Paths are relative to the mount, so nothing here names the plugin or where
// it is mounted. Standard library only: the root module gains no dependency.
package apicases

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// Server names what answers a Client's requests.
type Server string

const (
	InProcess Server = "in-process"
	Vault     Server = "vault"
	OpenBao   Server = "openbao"
)

// Client sends requests to one mount of the engine.
type Client interface {
	Server() Server
	// Do sends one request: method is GET, LIST, POST, PUT or DELETE; path
	// is relative to the mount, as the plugin is to receive it, and may end
	// in "?list=true"; body is nil for none. An error means no answer came.
	Do(method, path string, body map[string]any) (Answer, error)
}

// Answer is what a client program sees, decoded from JSON.
type Answer struct {
	Status   int
	Data     map[string]any
	Errors   []string
	Warnings []string
}

// Case is one behaviour of the API: steps run in order on a fresh mount.
type Case struct {
	Name  string
	Steps []Step
}

// Step is one request and the answer it must get.
type Step struct {
	Method string
	Path   string
	Body   map[string]any
	Want   Want
	// On gives the answer of a server that answers the request itself,
	// before the plugin sees it, in place of Want.
	On map[Server]Want
}

// Want is what an answer must be.
type Want struct {
	Status int
	// Data holds fields the data must have: a value is compared as JSON
	// (1 and 1.0 are equal), or is a Check.
	Data map[string]any
	// OnlyData: the data holds no field beyond Data and Keys.
	OnlyData bool
	// Keys, when not nil, are a list's keys, in order.
	Keys []string
	// Errors and Warnings are fragments that some error or warning must
	// contain, each.
	Errors   []string
	Warnings []string
}

// Check judges one field of an answer's data, given the answers of the case's
// steps so far, this one's last; it says what it wanted, for the failure
// message. A field that is absent comes as nil.
type Check func(got any, answers []Answer) (want string, ok bool)

// SameAs wants the value of field in the answer of step (from 1; this step's
// own number names another field of this answer).
func SameAs(step int, field string) Check {
	return func(got any, answers []Answer) (string, bool) {
		prior, ok := stepField(answers, step, field)
		want := fmt.Sprintf("step %d's %s %s", step, field, show(prior))
		return want, ok && reflect.DeepEqual(got, prior)
	}
}

// Plus wants a number n more than field in the answer of step.
func Plus(step int, field string, n float64) Check {
	return func(got any, answers []Answer) (string, bool) {
		prior, ok := stepField(answers, step, field)
		want := fmt.Sprintf("step %d's %s %s plus %v", step, field, show(prior), n)
		p, isNumber := prior.(float64)
		g, gotNumber := got.(float64)
		return want, ok && isNumber && gotNumber && g == p+n
	}
}

// Later wants an RFC 3339 time after field in the answer of step.
func Later(step int, field string) Check {
	return func(got any, answers []Answer) (string, bool) {
		prior, _ := stepField(answers, step, field)
		want := fmt.Sprintf("a time later than step %d's %s %s", step, field, show(prior))
		p, err1 := parseTime(prior)
		g, err2 := parseTime(got)
		return want, err1 == nil && err2 == nil && g.After(p)
	}
}

// NowUTC wants an RFC 3339 time in UTC, as the API writes them, within a
// minute of the test's clock: servers under test run on its machine, so a
// time further off (a zero time, one kept from long ago) is wrong.
var NowUTC Check = func(got any, _ []Answer) (string, bool) {
	t, err := parseTime(got)
	within := time.Since(t).Abs() < time.Minute
	return "an RFC 3339 time in UTC within a minute of now", err == nil && t.Location() == time.UTC && within
}

func stepField(answers []Answer, step int, field string) (any, bool) {
	if step < 1 || step > len(answers) {
		return nil, false
	}
	v, ok := answers[step-1].Data[field]
	return v, ok
}

func parseTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("not a string")
	}
	return time.Parse(time.RFC3339Nano, s)
}

// Run runs each case as a subtest named after it, on a mount newMount makes
// for it. A case stops at its first step whose answer is wrong.
func Run(t *testing.T, newMount func(t *testing.T) Client, cases []Case) {
	t.Helper()
	if err := validate(cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			client := newMount(t)
			if s := client.Server(); s != InProcess && s != Vault && s != OpenBao {
				t.Fatalf("the client names its server %q, want %q, %q or %q", s, InProcess, Vault, OpenBao)
			}
			var answers []Answer
			for i, s := range c.Steps {
				want := s.Want
				if w, ok := s.On[client.Server()]; ok {
					want = w
				}
				step := fmt.Sprintf("step %d of %d, %s", i+1, len(c.Steps), s)
				got, err := client.Do(s.Method, s.Path, s.Body)
				if err != nil {
					t.Fatalf("%s: no answer (%v), want status %d", step, err, want.Status)
				}
				answers = append(answers, got)
				if problems := want.problems(got, answers); len(problems) > 0 {
					t.Fatalf("%s on %s:\n\t%s\n\tanswer: %s", step, client.Server(), strings.Join(problems, "\n\t"), got)
				}
			}
		})
	}
}

// validate refuses a table that would test less than it seems to.
func validate(cases []Case) error {
	if len(cases) == 0 {
		return fmt.Errorf("no cases")
	}
	names := map[string]bool{}
	for _, c := range cases {
		if c.Name == "" || strings.ContainsAny(c.Name, "/ ") || names[c.Name] {
			return fmt.Errorf("case name %q: want one that is unique, not empty, without '/' or spaces", c.Name)
		}
		names[c.Name] = true
		if len(c.Steps) == 0 {
			return fmt.Errorf("case %s has no steps", c.Name)
		}
		for i, s := range c.Steps {
			wants := []Want{s.Want}
			for server, w := range s.On {
				if server != InProcess && server != Vault && server != OpenBao {
					return fmt.Errorf("case %s step %d: unknown server %q", c.Name, i+1, server)
				}
				wants = append(wants, w)
			}
			for _, w := range wants {
				if w.Status == 0 {
					return fmt.Errorf("case %s step %d: no status wanted", c.Name, i+1)
				}
			}
		}
	}
	return nil
}

// String names a step in a failure: method, path and body.
func (s Step) String() string {
	text := s.Method + " " + s.Path
	if s.Body != nil {
		text += " " + show(s.Body)
	}
	return text
}

func (a Answer) String() string {
	return fmt.Sprintf("status %d, data %s, errors %q, warnings %q", a.Status, show(a.Data), a.Errors, a.Warnings)
}

// problems lists how got differs from w, each as what was got beside what
// was wanted; answers are the case's so far, got last.
func (w Want) problems(got Answer, answers []Answer) []string {
	var out []string
	if got.Status != w.Status {
		out = append(out, fmt.Sprintf("status %d, want %d", got.Status, w.Status))
	}
	fields := make([]string, 0, len(w.Data))
	for f := range w.Data {
		fields = append(fields, f)
	}
	slices.Sort(fields)
	for _, f := range fields {
		value, present := got.Data[f]
		shown := "absent"
		if present {
			shown = show(value)
		}
		if check, ok := w.Data[f].(Check); ok {
			if want, ok := check(value, answers); !ok {
				out = append(out, fmt.Sprintf("data.%s %s, want %s", f, shown, want))
			}
			continue
		}
		if want := asJSON(w.Data[f]); !present || !reflect.DeepEqual(value, want) {
			out = append(out, fmt.Sprintf("data.%s %s, want %s", f, shown, show(want)))
		}
	}
	if w.Keys != nil {
		value, present := got.Data["keys"]
		if want := asJSON(w.Keys); !present || !reflect.DeepEqual(value, want) {
			out = append(out, fmt.Sprintf("keys %s, want %s", show(value), show(want)))
		}
	}
	if w.OnlyData {
		for f := range got.Data {
			if _, wanted := w.Data[f]; !wanted && (f != "keys" || w.Keys == nil) {
				out = append(out, fmt.Sprintf("data.%s %s, want no such field", f, show(got.Data[f])))
			}
		}
	}
	for _, f := range w.Errors {
		if !slices.ContainsFunc(got.Errors, func(e string) bool { return strings.Contains(e, f) }) {
			out = append(out, fmt.Sprintf("errors %q, want one that mentions %q", got.Errors, f))
		}
	}
	for _, f := range w.Warnings {
		if !slices.ContainsFunc(got.Warnings, func(e string) bool { return strings.Contains(e, f) }) {
			out = append(out, fmt.Sprintf("warnings %q, want one that mentions %q", got.Warnings, f))
		}
	}
	return out
}

// asJSON is v as it comes back from JSON, so that a table may write 1 for
// the 1.0 a decoder returns, and []string for its []any.
func asJSON(v any) any {
	encoded, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("apicases: a wanted value is not JSON: %v", err))
	}
	var out any
	if err := json.Unmarshal(encoded, &out); err != nil {
		panic(err)
	}
	return out
}

func show(v any) string {
	encoded, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	return string(encoded)
}

// URLPath is path as an HTTP client must write it in a URL for the server to
// hand the plugin path itself. A server cleans a "." or ".." segment and an
// empty segment out of a plain URL, redirecting to another path, but passes
// on their percent-encoded forms; any other byte a URL cannot hold as it is
// goes percent-encoded too. A query after "?" is kept as it is.
func URLPath(path string) string {
	path, query, hasQuery := strings.Cut(path, "?")
	segments := strings.Split(path, "/")
	var b strings.Builder
	for i, s := range segments {
		if i > 0 {
			// A slash beside an empty segment, other than a folder's
			// trailing one, would be cleaned away.
			if segments[i-1] == "" || (s == "" && i < len(segments)-1) {
				b.WriteString("%2F")
			} else {
				b.WriteString("/")
			}
		}
		switch s {
		case ".":
			b.WriteString("%2E")
		case "..":
			b.WriteString("%2E%2E")
		default:
			b.WriteString(url.PathEscape(s))
		}
	}
	if hasQuery {
		b.WriteString("?" + query)
	}
	return b.String()
}
