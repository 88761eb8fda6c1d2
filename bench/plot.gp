# bench/plot.gp: one page of the run, from the data file bench/report.py
# writes (three blocks): fan-out delivered msgs/s and p99 latency (fan-out,
# many rooms) per server; acked publishes/s of the durable peers; the time
# until every subscriber caught up after a mass reconnect, for the servers
# that keep what was missed (the others never catch up).
# gnuplot -e "datafile='X.plot.dat'; outfile='X.png'" bench/plot.gp
set terminal pngcairo size 1100,860 font ",10"
set output outfile
set multiplot layout 2,2
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
plot datafile index 0 using 2:xtic(1) title "delivered/s" lc rgb "#3b7dd8"
set key outside bottom center horizontal
set title "p99 end-to-end latency"
set ylabel "milliseconds"
set format y "%g"
set logscale y
set yrange [*:*]
plot datafile index 0 using 3:xtic(1) title "fan-out p99" lc rgb "#d8603b", \
     '' index 0 using 4 title "many rooms p99" lc rgb "#5aa55a"
unset logscale y
set yrange [0:*]
set title "Durable publish: acked publishes/s"
set ylabel "acked/s"
set format y "%.0s%c"
plot datafile index 1 using 2:xtic(1) title "64 unary x 1" lc rgb "#8a5cc7", \
     '' index 1 using 3 title "16 streams x 128" lc rgb "#c79a2e"
set title "Mass reconnect (10,000): seconds until all caught up"
set ylabel "seconds"
set format y "%g"
unset key
plot datafile index 2 using 2:xtic(1) lc rgb "#3b7dd8"
unset multiplot
