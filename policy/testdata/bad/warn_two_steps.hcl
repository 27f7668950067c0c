# want: 4:14 in random order opens door "ssh" with odds 1 in 65535 per full scan
# severity: warning
door "ssh" {
  sequence = [7000, 8000]
  open = ["22/tcp"]
}
