package apicases

import (
	"strings"
	"testing"
	"time"
)

// The checks must fail on a wrong answer, or every suite that runs the table
// would pass whatever the plugin answers.
func TestWant_ProblemsNameWhatWasWantedAndGot(t *testing.T) {
	first := Answer{Status: 200, Data: map[string]any{
		"version": 1.0, "created_time": "2025-01-01T00:00:00Z", "updated_time": "2025-01-01T00:00:00Z",
	}}
	tests := []struct {
		name string
		want Want
		got  Answer
		// problems are fragments of each problem reported, in order; none
		// for a right answer.
		problems []string
	}{
		{"right", Want{Status: 200, Data: map[string]any{"version": 2, "created_time": SameAs(1, "created_time"),
			"updated_time": Later(1, "updated_time")}},
			Answer{Status: 200, Data: map[string]any{"version": 2.0, "created_time": "2025-01-01T00:00:00Z", "updated_time": "2025-01-01T00:00:01Z"}},
			nil},
		{"status", Want{Status: 400}, Answer{Status: 200}, []string{"status 200, want 400"}},
		{"value", Want{Status: 200, Data: map[string]any{"data": map[string]any{"a": "1", "b": "2"}}},
			Answer{Status: 200, Data: map[string]any{"data": map[string]any{"a": "1"}}},
			[]string{`data.data {"a":"1"}, want {"a":"1","b":"2"}`}},
		{"absent", Want{Status: 200, Data: map[string]any{"version": 1}}, Answer{Status: 200},
			[]string{"data.version absent, want 1"}},
		{"same as", Want{Status: 200, Data: map[string]any{"created_time": SameAs(1, "created_time")}},
			Answer{Status: 200, Data: map[string]any{"created_time": "2025-02-02T00:00:00Z"}},
			[]string{`data.created_time "2025-02-02T00:00:00Z", want step 1's created_time "2025-01-01T00:00:00Z"`}},
		{"plus", Want{Status: 200, Data: map[string]any{"version": Plus(1, "version", 1)}},
			Answer{Status: 200, Data: map[string]any{"version": 1.0}},
			[]string{"data.version 1, want step 1's version 1 plus 1"}},
		{"later", Want{Status: 200, Data: map[string]any{"updated_time": Later(1, "updated_time")}},
			Answer{Status: 200, Data: map[string]any{"updated_time": "2025-01-01T00:00:00Z"}},
			[]string{"want a time later than step 1's updated_time"}},
		{"utc", Want{Status: 200, Data: map[string]any{"t": NowUTC}},
			Answer{Status: 200, Data: map[string]any{"t": time.Now().In(time.FixedZone("CET", 3600)).Format(time.RFC3339Nano)}},
			[]string{"want an RFC 3339 time in UTC within a minute of now"}},
		{"now", Want{Status: 200, Data: map[string]any{"t": NowUTC}},
			Answer{Status: 200, Data: map[string]any{"t": "0001-01-01T00:00:00Z"}},
			[]string{"want an RFC 3339 time in UTC within a minute of now"}},
		{"right now", Want{Status: 200, Data: map[string]any{"t": NowUTC}},
			Answer{Status: 200, Data: map[string]any{"t": time.Now().UTC().Format(time.RFC3339Nano)}},
			nil},
		{"keys", Want{Status: 200, Keys: []string{"a", "b"}}, Answer{Status: 200, Data: map[string]any{"keys": []any{"b", "a"}}},
			[]string{`keys ["b","a"], want ["a","b"]`}},
		{"only", Want{Status: 200, OnlyData: true, Data: map[string]any{"version": 1}},
			Answer{Status: 200, Data: map[string]any{"version": 1.0, "data": "x"}},
			[]string{`data.data "x", want no such field`}},
		{"errors", Want{Status: 400, Errors: []string{"cas: required"}}, Answer{Status: 400, Errors: []string{"data: required"}},
			[]string{`errors ["data: required"], want one that mentions "cas: required"`}},
		{"warnings", Want{Status: 200, Warnings: []string{"colour"}}, Answer{Status: 200},
			[]string{`warnings [], want one that mentions "colour"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.want.problems(tt.got, []Answer{first, tt.got})
			if len(got) != len(tt.problems) {
				t.Fatalf("problems %q, want %d mentioning %q", got, len(tt.problems), tt.problems)
			}
			for i, p := range tt.problems {
				if !strings.Contains(got[i], p) {
					t.Errorf("problem %q, want one mentioning %q", got[i], p)
				}
			}
		})
	}
}

func TestURLPath_HandsThePluginThePathItself(t *testing.T) {
	tests := map[string]string{
		"secrets/team/app":        "secrets/team/app",
		"secrets/":                "secrets/",
		"secrets/team/?list=true": "secrets/team/?list=true",
		"secrets/.":               "secrets/%2E",
		"secrets/a/../b":          "secrets/a/%2E%2E/b",
		"secrets/a..b":            "secrets/a..b",
		"secrets/a//b":            "secrets/a%2F%2Fb",
		"secrets//":               "secrets%2F%2F",
		"secrets/a\x01b":          "secrets/a%01b",
		"secrets/a b?":            "secrets/a%20b?",
	}
	for path, want := range tests {
		if got := URLPath(path); got != want {
			t.Errorf("URLPath(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestAll_EveryCaseIsRunnable(t *testing.T) {
	all := All()
	if err := validate(all); err != nil {
		t.Fatalf("validate(All()): %v, want no error", err)
	}
	for _, bad := range [][]Case{
		nil,
		{{Name: "no-steps"}},
		{{Name: "no-status", Steps: []Step{{Method: "GET", Path: "config"}}}},
		{{Name: "twice", Steps: all[0].Steps}, {Name: "twice", Steps: all[0].Steps}},
		{{Name: "a/b", Steps: all[0].Steps}},
		{{Name: "unknown-server", Steps: []Step{{Method: "GET", Path: "config", Want: Want{Status: 200}, On: map[Server]Want{"consul": {Status: 200}}}}}},
	} {
		if validate(bad) == nil {
			t.Errorf("validate accepts %+v, want an error", bad)
		}
	}
	// All makes the table afresh, so a runner that changes a body changes
	// no other runner's.
	a, b := All(), All()
	a[0].Steps[0].Body["data"] = "changed"
	if b[0].Steps[0].Body["data"] == "changed" {
		t.Fatal("All returns cases that share their bodies, want fresh ones on each call")
	}
}
