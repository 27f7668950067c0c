# want: 4:13 needs at least the program
door "ssh" {
  sequence = ["7000", "8000", "9000"]
  on_open = []
  open = ["22/tcp"]
}
