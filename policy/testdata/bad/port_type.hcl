# want: 3:21 must be a string or a number, not a bool
door "ssh" {
  sequence = [7000, true, 9000]
  open = ["22/tcp"]
}
