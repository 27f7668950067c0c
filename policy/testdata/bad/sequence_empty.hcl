# want: 3:14 needs at least one step
door "ssh" {
  sequence = []
  open = ["22/tcp"]
}
