# want: 4:14 a sweep in descending port order sends them back to back
# severity: warning
door "ssh" {
  sequence = [9003, 9002, 9001, 9000]
  open = ["22/tcp"]
}
