# want: 5:14 outside 1s to 24h
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
  open_for = "25h"
}
