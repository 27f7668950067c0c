# want: 2:6 1 to 64 characters
door "" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
}
