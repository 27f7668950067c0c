# want: 4:14 A 2-step sequence
# severity: warning
door "ssh" {
  sequence = [7000, 8000]
  open = ["22/tcp"]
}
