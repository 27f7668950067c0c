# want: 5:18 hook_timeout out of range
door "ssh" {
  sequence = ["7000", "8000", "9000"]
  on_open = ["/usr/bin/true"]
  hook_timeout = "2h"
  open = ["22/tcp"]
}
