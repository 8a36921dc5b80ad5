# Draws throughput (MiB/s) and peak RSS (MiB) per tool and data set from chart.dat; called by summarize.sh.
set terminal pngcairo size 1200,500 noenhanced font ",10"
set output outfile
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set key top left
set grid ytics
set yrange [0:*]
set multiplot layout 1,2 title "blobferry vs rclone (medians; same two s3rver, same concurrency)"
set title "throughput (MiB/s, higher is better)"
plot datafile using 2:xtic(1) title "blobferry embedded", '' using 3 title "blobferry distributed", '' using 4 title "rclone"
set title "peak RSS of the copier processes (MiB, lower is better)"
plot datafile using 5:xtic(1) title "blobferry embedded", '' using 6 title "blobferry distributed", '' using 7 title "rclone"
unset multiplot
