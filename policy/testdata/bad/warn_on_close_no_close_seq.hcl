# want: 5:14 on_close never runs
# severity: warning
door "ssh" {
  sequence = ["7000", "8000", "9000"]
  on_close = ["/usr/bin/true"]
  open = ["22/tcp"]
}
