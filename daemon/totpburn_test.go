package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sesame-knock/sesame/knock"
)

func TestReadBurns(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []knock.Burn
		wantErr string
	}{
		{name: "empty", in: burnHeader + "\n", want: nil},
		{name: "two", in: burnHeader + "\nvault\talice\t56666667\nvault\tbob\t56666668\n",
			want: []knock.Burn{{Door: "vault", Client: "alice", Counter: 56666667}, {Door: "vault", Client: "bob", Counter: 56666668}}},
		{name: "no header", in: "vault\talice\t1\n", wantErr: "not a burns file"},
		{name: "short line", in: burnHeader + "\nvault\talice\n", wantErr: "line 2"},
		{name: "bad counter", in: burnHeader + "\nvault\talice\t-1\n", wantErr: "line 2: counter"},
		{name: "empty name", in: burnHeader + "\n\talice\t1\n", wantErr: "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), burnFile)
			if err := os.WriteFile(path, []byte(tt.in), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := readBurns(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("burns (-want +got):\n%s", diff)
			}
		})
	}
}
