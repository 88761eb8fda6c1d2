# bench/plot.gp: delivered msgs/s (fan-out) and p99 latency (fan-out, many
# rooms) per server, from the data file bench/report.py writes.
# gnuplot -e "datafile='X.plot.dat'; outfile='X.png'" bench/plot.gp
set terminal pngcairo size 1100,450 font ",10"
set output outfile
set multiplot layout 1,2
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.8
set grid ytics
set yrange [0:*]
set xtics nomirror
set title "Fan-out: delivered messages/s (1 room, 1 publisher flat out)"
set ylabel "messages/s"
set format y "%.0s%c"
plot datafile using 2:xtic(1) title "delivered/s" lc rgb "#3b7dd8"
set key outside bottom center horizontal
set title "p99 end-to-end latency"
set ylabel "milliseconds"
set format y "%g"
set logscale y
set yrange [*:*]
plot datafile using 3:xtic(1) title "fan-out p99" lc rgb "#d8603b", \
     '' using 4 title "many rooms p99" lc rgb "#5aa55a"
unset multiplot
