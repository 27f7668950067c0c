package policy

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sesame-knock/sesame/spa"
)

func TestSPADoor(t *testing.T) {
	t.Parallel()
	src := `door "a" {
  spa { port = 40001 }
  client "bob" {
    key_file       = "secrets/alice.spa"
    hmac_digest    = "SHA512"
    allow_other_ip = true
  }
  open     = ["22/tcp", "53/udp"]
  open_for = "10m"
}
door "b" {
  spa { max_age = "30s" }
  client "c" { key_file = "secrets/alice.spa" }
  open = ["23"]
}
`
	p, diags := Parse("testdata/spa.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	checkInvariants(t, p)
	if diff := cmp.Diff([]uint16{40001, 62201}, p.SPAPorts()); diff != "" {
		t.Errorf("SPAPorts (-want +got):\n%s", diff)
	}
	a, b := p.SPADoor(40001), p.SPADoor(62201)
	if a == nil || b == nil || a.Name != "a" || b.Name != "b" || p.SPADoor(1) != nil {
		t.Fatalf("SPADoor: %v %v", a, b)
	}
	// max_open_for defaults to 5m, or open_for when that is longer.
	if diff := cmp.Diff(&SPA{Port: 40001, MaxAge: 2 * time.Minute, MaxOpenFor: 10 * time.Minute}, a.SPA); diff != "" {
		t.Errorf("door a (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&SPA{Port: 62201, MaxAge: 30 * time.Second, MaxOpenFor: 5 * time.Minute}, b.SPA); diff != "" {
		t.Errorf("door b (-want +got):\n%s", diff)
	}
	if c := a.Clients[0]; c.Keys.Digest != spa.SHA512 || !c.AllowOtherIP || c.KeyFile != "testdata/secrets/alice.spa" {
		t.Errorf("client bob = %+v, want sha512, allow_other_ip, resolved path", c)
	}
	if c := b.Clients[0]; c.Keys.Digest != spa.SHA256 || c.AllowOtherIP {
		t.Errorf("client c = %+v, want the defaults", c)
	}
	if p.KnockPorts() != nil {
		t.Errorf("KnockPorts = %v, want none: SPA ports are not knock ports", p.KnockPorts())
	}
}
