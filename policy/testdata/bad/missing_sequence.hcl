# want: 2:1 sequence is required
door "ssh" {
  open = ["22"]
}
