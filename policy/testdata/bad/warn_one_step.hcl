# want: 4:14 A 1-step sequence is found by a port scan
# severity: warning
door "ssh" {
  sequence = ["7000"]
  open = ["22/tcp"]
}
