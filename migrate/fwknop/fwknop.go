// Package fwknop converts fwknopd's access.conf into sesame SPA doors
// (`sesame convert --fwknop`). Each SOURCE stanza becomes a client; stanzas
// that open the same ports with the same timeouts share a door, since each
// SPA door has its own UDP port. What has no sesame equivalent is reported
// as a warning with its line, never silently dropped.
package fwknop

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sesame-knock/sesame/migrate"
	"github.com/sesame-knock/sesame/spa"
)

// Entry is one "KEY value" line of a stanza.
type Entry struct {
	Line  int
	Key   string // upper case
	Value string
}

// Stanza starts at a SOURCE line and runs to the next one.
type Stanza struct {
	Line    int
	Entries []Entry
}

// Parse reads access.conf: "#" comments, blank lines, and "KEY value"
// lines grouped into stanzas by SOURCE. Lines before the first SOURCE are
// an error, as fwknopd treats them.
func Parse(src []byte) ([]Stanza, error) {
	var out []Stanza
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		key, val, _ := strings.Cut(strings.Join(strings.Fields(line), " "), " ")
		key = strings.ToUpper(strings.TrimSuffix(key, ":"))
		e := Entry{Line: n, Key: key, Value: strings.TrimSpace(val)}
		if key == "SOURCE" {
			out = append(out, Stanza{Line: n})
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("line %d: %s before the first SOURCE stanza", n, key)
		}
		out[len(out)-1].Entries = append(out[len(out)-1].Entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

type client struct {
	name    string
	line    int
	keys    spa.Keys
	openFor int // seconds
	maxFor  int // seconds; 0: default
	ports   []string
	keyPath string
}

// unsupported names the access.conf variables sesame deliberately does not
// implement, with why.
var unsupported = map[string]string{
	"ENABLE_CMD_EXEC":             "command execution (message type 0) is never done by sesame",
	"ENABLE_CMD_SUDO_EXEC":        "command execution (message type 0) is never done by sesame",
	"CMD_EXEC_USER":               "command execution is never done by sesame",
	"CMD_SUDO_EXEC_USER":          "command execution is never done by sesame",
	"CMD_SUDO_EXEC_GROUP":         "command execution is never done by sesame",
	"CMD_EXEC_GROUP":              "command execution is never done by sesame",
	"CMD_CYCLE_OPEN":              "command execution is never done by sesame",
	"CMD_CYCLE_CLOSE":             "command execution is never done by sesame",
	"CMD_CYCLE_TIMER":             "command execution is never done by sesame",
	"GPG_HOME_DIR":                "GPG mode is not supported: use Rijndael keys with HMAC",
	"GPG_EXE":                     "GPG mode is not supported",
	"GPG_DECRYPT_ID":              "GPG mode is not supported",
	"GPG_DECRYPT_PW":              "GPG mode is not supported",
	"GPG_ALLOW_NO_PW":             "GPG mode is not supported",
	"GPG_REQUIRE_SIG":             "GPG mode is not supported",
	"GPG_DISABLE_SIG":             "GPG mode is not supported",
	"GPG_IGNORE_SIG_VERIFY_ERROR": "GPG mode is not supported",
	"GPG_REMOTE_ID":               "GPG mode is not supported",
	"GPG_FINGERPRINT_ID":          "GPG mode is not supported",
	"FORCE_NAT":                   "NAT access is not supported",
	"FORCE_SNAT":                  "NAT access is not supported",
	"FORCE_MASQUERADE":            "NAT access is not supported",
	"DISABLE_DNAT":                "NAT access is not supported",
	"FORWARD_ALL":                 "NAT access is not supported",
	"ENCRYPTION_MODE":             "only CBC with HMAC is supported (no legacy IV mode)",
	"RESTRICT_PORTS":              "use open to list what a client may ask for",
	"REQUIRE_USERNAME":            "sesame authenticates clients by key, not by the message's user name",
	"ACCESS_EXPIRE":               "stanza expiry has no equivalent: remove the client when it expires",
	"ACCESS_EXPIRE_EPOCH":         "stanza expiry has no equivalent: remove the client when it expires",
	"DESTINATION":                 "sesame grants on this host's guarded ports only",
}

// Convert turns stanzas into HCL. keyDir is where the key files go (their
// paths in key_file); source names the input in comments.
func Convert(stanzas []Stanza, source, keyDir string) migrate.Result {
	var r migrate.Result
	warn := func(line int, format string, a ...any) {
		r.Warnings = append(r.Warnings, migrate.Warning{Line: line, Msg: fmt.Sprintf(format, a...)})
	}
	var clients []*client
	for i, s := range stanzas {
		c := &client{name: fmt.Sprintf("stanza%d", i+1), line: s.Line, openFor: 30, keys: spa.Keys{Digest: spa.SHA256}}
		ok := true
		for _, e := range s.Entries {
			switch e.Key {
			case "SOURCE":
				if v := strings.ToUpper(e.Value); v != "ANY" && v != "0.0.0.0/0" {
					warn(e.Line, "SOURCE %s: sesame has no source restriction per client; this client is accepted from any address", e.Value)
				}
			case "OPEN_PORTS":
				for p := range strings.SplitSeq(e.Value, ",") {
					p = strings.ToLower(strings.TrimSpace(p))
					a, err := spa.ParseAccess(p)
					if err != nil || (a.Proto != "tcp" && a.Proto != "udp") || a.Port == 0 {
						warn(e.Line, "OPEN_PORTS entry %q: only tcp/PORT and udp/PORT (1 to 65535) are supported", p)
						continue
					}
					if pp := fmt.Sprintf("%d/%s", a.Port, a.Proto); !slices.Contains(c.ports, pp) {
						c.ports = append(c.ports, pp)
					}
				}
			case "KEY", "HMAC_KEY":
				b := []byte(e.Value)
				if e.Key == "KEY" {
					c.keys.Enc = b
				} else {
					c.keys.HMAC = b
				}
			case "KEY_BASE64", "HMAC_KEY_BASE64":
				b, err := base64.StdEncoding.DecodeString(e.Value)
				if err != nil {
					warn(e.Line, "%s is not base64", e.Key)
					ok = false
					continue
				}
				if e.Key == "KEY_BASE64" {
					c.keys.Enc = b
				} else {
					c.keys.HMAC = b
				}
			case "HMAC_DIGEST_TYPE":
				d, err := spa.ParseDigest(e.Value)
				if err != nil {
					warn(e.Line, "HMAC_DIGEST_TYPE %q: %v", e.Value, err)
					ok = false
					continue
				}
				c.keys.Digest = d
			case "FW_ACCESS_TIMEOUT", "MAX_FW_TIMEOUT":
				n, err := strconv.Atoi(e.Value)
				if err != nil || n < 1 || n > 86400 {
					warn(e.Line, "%s %q: want 1 to 86400 seconds", e.Key, e.Value)
					continue
				}
				if e.Key == "FW_ACCESS_TIMEOUT" {
					c.openFor = n
				} else {
					c.maxFor = n
				}
			case "REQUIRE_SOURCE_ADDRESS":
				if strings.EqualFold(e.Value, "Y") {
					warn(e.Line, "REQUIRE_SOURCE_ADDRESS Y: no equivalent; sesame accepts 0.0.0.0 (fwknop -s) as the packet's source, and never grants an address other than the source unless allow_other_ip = true")
				}
			case "USE_HMAC":
				if strings.EqualFold(e.Value, "N") {
					warn(e.Line, "USE_HMAC N: sesame requires an HMAC; give this client HMAC keys (sesame keygen --spa)")
				}
			default:
				if why, known := unsupported[e.Key]; known {
					warn(e.Line, "%s: %s", e.Key, why)
				} else {
					warn(e.Line, "%s: unknown or unsupported access.conf variable", e.Key)
				}
			}
		}
		switch {
		case !ok:
		case len(c.keys.HMAC) == 0:
			warn(s.Line, "stanza has no HMAC_KEY or HMAC_KEY_BASE64: sesame requires an HMAC; this stanza is not converted (make new keys with sesame keygen --spa)")
		case c.keys.Validate() != nil:
			warn(s.Line, "stanza's keys: %v; this stanza is not converted", c.keys.Validate())
		case len(c.ports) == 0:
			warn(s.Line, "stanza has no usable OPEN_PORTS: sesame needs the ports a client may open; this stanza is not converted")
		default:
			if c.maxFor != 0 && c.maxFor < c.openFor {
				c.maxFor = c.openFor
			}
			c.keyPath = strings.TrimSuffix(keyDir, "/") + "/fwknop-" + c.name + ".spa"
			r.KeyFiles = append(r.KeyFiles, migrate.KeyFile{Path: c.keyPath, Content: c.keys.KeyFile()})
			clients = append(clients, c)
		}
	}
	r.HCL = render(clients, source)
	return r
}

// render groups clients with equal ports and timeouts into doors.
func render(clients []*client, source string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Converted from %s by sesame convert --fwknop.\n", source)
	fmt.Fprintf(&b, "# Each SPA door listens on its own UDP port: clients of a door other than\n# the first must send to its port (fwknop --server-port PORT).\n")
	type group struct {
		key     string
		members []*client
	}
	var groups []*group
	for _, c := range clients {
		k := fmt.Sprintf("%s|%d|%d", strings.Join(c.ports, ","), c.openFor, c.maxFor)
		i := slices.IndexFunc(groups, func(g *group) bool { return g.key == k })
		if i < 0 {
			groups = append(groups, &group{key: k})
			i = len(groups) - 1
		}
		groups[i].members = append(groups[i].members, c)
	}
	for i, g := range groups {
		c0 := g.members[0]
		name := "fwknop"
		if i > 0 {
			name = fmt.Sprintf("fwknop%d", i+1)
		}
		fmt.Fprintf(&b, "\ndoor %q {\n  spa {\n    port = %d\n  }\n", name, spa.DefaultPort+i)
		for _, c := range g.members {
			fmt.Fprintf(&b, "  # %s line %d\n  client %q {\n    key_file    = %q\n    hmac_digest = %q\n  }\n", source, c.line, c.name, c.keyPath, c.keys.Digest)
		}
		q := make([]string, len(c0.ports))
		for j, p := range c0.ports {
			q[j] = strconv.Quote(p)
		}
		fmt.Fprintf(&b, "  open     = [%s]\n  open_for = \"%ds\"\n", strings.Join(q, ", "), c0.openFor)
		if c0.maxFor != 0 {
			fmt.Fprintf(&b, "  max_open_for = \"%ds\"\n", c0.maxFor)
		}
		b.WriteString("}\n")
	}
	return b.Bytes()
}
