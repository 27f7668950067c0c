package doctor

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The iptables-legacy tables are read from the kernel, not by running
// iptables-legacy-save: sesame shells out to nothing, the binary may be
// missing where the tables are not (a container image's iptables, an old
// Docker), and running it would load the modules it asks about. The
// kernel lists the x_tables tables that exist in /proc/net/ip_tables_names
// and ip6_tables_names (per network namespace; a table exists once
// something loaded it), and the getsockopt interface that iptables itself
// uses says how many entries each holds (IPT_SO_GET_INFO) and, from the
// entries (IPT_SO_GET_ENTRIES), each built-in chain's policy. Only names
// the kernel lists are asked about, so no module is loaded by the doctor.

const (
	soGetInfo    = 64 // IPT_SO_GET_INFO, IP6T_SO_GET_INFO
	soGetEntries = 65 // IPT_SO_GET_ENTRIES, IP6T_SO_GET_ENTRIES
	xtTableLen   = 32
	numHooks     = 5
)

var hookNames = [numHooks]string{"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}

// getinfo is struct ipt_getinfo (and ip6t_getinfo).
type getinfo struct {
	Name       [xtTableLen]byte
	ValidHooks uint32
	HookEntry  [numHooks]uint32
	Underflow  [numHooks]uint32
	NumEntries uint32
	Size       uint32
}

// readLegacy lists the iptables-legacy tables of the namespace whose
// /proc/net is procNet.
func readLegacy(procNet string) ([]LegacyTable, error) {
	var out []LegacyTable
	for _, fam := range []struct {
		name, file string
		af, level  int
		// the offset of target_offset in struct ipt_entry / ip6t_entry
		targetOff int
	}{
		{"ip", "ip_tables_names", unix.AF_INET, unix.IPPROTO_IP, 88},
		{"ip6", "ip6_tables_names", unix.AF_INET6, unix.IPPROTO_IPV6, 140},
	} {
		names, err := readNames(filepath.Join(procNet, fam.file))
		if err != nil {
			return out, err
		}
		if len(names) == 0 {
			continue
		}
		fd, err := unix.Socket(fam.af, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			return out, fmt.Errorf("iptables-legacy %s: %w", fam.name, err)
		}
		for _, n := range names {
			t, err := legacyTable(fd, fam.level, fam.targetOff, n)
			if err != nil {
				unix.Close(fd)
				return out, fmt.Errorf("iptables-legacy %s %s: %w", fam.name, n, err)
			}
			t.Family = fam.name
			out = append(out, t)
		}
		unix.Close(fd)
	}
	return out, nil
}

func readNames(path string) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // no x_tables in this kernel
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if n := s.Text(); n != "" && len(n) < xtTableLen {
			out = append(out, n)
		}
	}
	return out, s.Err()
}

func getsockopt(fd, level, opt int, buf []byte) error {
	l := uint32(len(buf))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return e
	}
	return nil
}

func legacyTable(fd, level, targetOff int, name string) (LegacyTable, error) {
	t := LegacyTable{Name: name}
	buf := make([]byte, unsafe.Sizeof(getinfo{}))
	copy(buf, name)
	if err := getsockopt(fd, level, soGetInfo, buf); err != nil {
		return t, fmt.Errorf("get info: %w", err)
	}
	var info getinfo
	if _, err := binary.Decode(buf, binary.NativeEndian, &info); err != nil {
		return t, err
	}
	// An empty table holds one entry per built-in chain (its policy) and
	// the error entry that ends it.
	t.Rules = max(int(info.NumEntries)-bits.OnesCount32(info.ValidHooks)-1, 0)
	// struct ipt_get_entries: name, size, then the entries at offset 40
	// (8-byte aligned).
	const head = 40
	ent := make([]byte, head+int(info.Size))
	copy(ent, name)
	binary.NativeEndian.PutUint32(ent[xtTableLen:], info.Size)
	if err := getsockopt(fd, level, soGetEntries, ent); err != nil {
		return t, fmt.Errorf("get entries: %w", err)
	}
	ent = ent[head:]
	for h := range numHooks {
		if info.ValidHooks&(1<<h) == 0 {
			continue
		}
		// The policy is the standard target of the chain's last entry
		// (its underflow): struct xt_entry_target (32 bytes) then the
		// verdict, -NF_DROP-1 = -1 for DROP.
		off := int(info.Underflow[h])
		if off+targetOff+2 > len(ent) {
			continue
		}
		tOff := off + int(binary.NativeEndian.Uint16(ent[off+targetOff:]))
		if tOff+36 > len(ent) {
			continue
		}
		if int32(binary.NativeEndian.Uint32(ent[tOff+32:])) == -1 {
			t.DropHooks = append(t.DropHooks, hookNames[h])
		}
	}
	return t, nil
}
