package capture

import (
	"golang.org/x/net/bpf"

	"github.com/sesame-knock/sesame/policy"
)

// rawTest is an Ethernet frame without extension loads, so the x/net/bpf VM
// can run the filters. The VM has no pkttype, so test frames carry the
// pkttype the kernel would report in the last byte of the destination MAC
// address (byte 5).
var rawTest = layout{
	base:      14,
	etherType: bpf.LoadAbsolute{Off: 12, Size: 2},
	pktType:   bpf.LoadAbsolute{Off: 5, Size: 1},
}

// filterRaw is Filter for a frame that starts at the Ethernet header, with
// the test pkttype convention of rawTest, for unit tests in the VM.
func filterRaw(p *policy.Policy) ([]bpf.Instruction, error) {
	return program(p, rawTest)
}

// spaFilterRaw is SPAFilter for the VM (see rawTest).
func spaFilterRaw(p *policy.Policy) ([]bpf.Instruction, error) {
	return spaProgram(p.SPAPorts(), rawTest)
}
