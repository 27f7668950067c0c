# want: 2:6 Missing name for door
door {
  sequence = ["7000", "8000/udp", "9000"]
  open = [22]
}
