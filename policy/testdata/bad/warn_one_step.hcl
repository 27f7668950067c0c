# want: 4:14 opens on one packet to 7000/tcp: any port scan that reaches it opens the door
# severity: warning
door "ssh" {
  sequence = ["7000"]
  open = ["22/tcp"]
}
