package doctor

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sesame-knock/sesame/policy"
)

// TestInputOf: the forward doors' targets, each once with the doors that
// forward it, and the outside interfaces (confirm is on by default).
func TestInputOf(t *testing.T) {
	t.Parallel()
	p, diags := policy.Parse("sesame.hcl", []byte(`
interfaces = ["eth0"]
door "app" {
  sequence = ["7000/tcp", "8000/udp", "9000/tcp"]
  forward  = ["8080/tcp", "192.0.2.10:22/tcp"]
}
door "ops" {
  sequence = ["7100/tcp", "8100/udp", "9100/tcp"]
  open     = ["22/tcp"]
  forward  = ["8080/tcp"]
}
`))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	in := InputOf(p)
	want := []Forward{
		{Proto: 6, Port: 8080, Doors: []string{"app", "ops"}},
		{Addr: netip.MustParseAddr("192.0.2.10"), Proto: 6, Port: 22, Doors: []string{"app"}},
	}
	if d := cmp.Diff(want, in.Forwards, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("forwards (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"eth0"}, in.Outside); d != "" {
		t.Errorf("outside: %s", d)
	}
	if d := cmp.Diff([]Port{{Proto: 6, Port: 22, Doors: []string{"ops"}, Confirm: true}}, in.Ports); d != "" {
		t.Errorf("ports: %s", d)
	}
}
