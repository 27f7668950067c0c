# want: 2:14 "chains" is not a table mode
table_mode = "chains"
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
}
