# want: 3:23 unknown protocol "sctp"
door "ssh" {
  sequence = ["7000", "8000/sctp", "9000"]
  open = ["22/tcp"]
}
