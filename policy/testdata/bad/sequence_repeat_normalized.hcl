# want: 3:23 Step 2 repeats step 1 (7000/tcp)
door "ssh" {
  sequence = ["7000", "7000/TCP", "9000"]
  open = ["22/tcp"]
}
