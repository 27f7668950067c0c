# want: 3:14 sequence must be a list, not a string
door "ssh" {
  sequence = "7000"
  open = ["22/tcp"]
}
