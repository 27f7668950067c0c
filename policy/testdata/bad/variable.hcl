# want: 4:11 Variables not allowed
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = [var.ssh]
}
