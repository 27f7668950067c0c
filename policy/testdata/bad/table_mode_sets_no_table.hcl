# want: 2:14 table_mode = "sets" keeps sesame's sets in a table of yours: name it
table_mode = "sets"
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
}
