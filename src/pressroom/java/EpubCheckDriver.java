// Pressroom's EPUBCheck runner. Nearly all of an EPUBCheck run is fixed start-up work (loading
// classes, compiling the RELAX NG and Schematron schemas), the same for a one-page ebook as for
// a long one. So the build starts this JVM first, and it checks a small ebook of its own
// (arguments: WARM.epub WARM.json) while the PDFs and the ebook render. Then it reads the real
// check's command line from standard input (one argument per line, ended by an empty line),
// runs it with the schemas already compiled, and writes "done STATUS" (EPUBCheck's exit status)
// on standard output. Standard input closed with no arguments means the build stopped.
//
// Kept for later builds: with -Dpressroom.serve=SOCKET -Dpressroom.keep=SECONDS it then serves
// further checks on that Unix socket (the same request, one connection each, one at a time; the
// reply is the same "done STATUS" line) until SECONDS pass with no request, or a request's only
// line is "--pressroom-stop". Only one JVM serves a socket: it holds SOCKET.lock while it does,
// and one that cannot take the lock exits after its own check. The socket's folder is the
// user's own (mode 0700, checked by the Python side), so only the user can connect.
//
// The first run is launched as a single source file (the JRE's jdk.compiler module compiles it
// in memory). With -Dpressroom.driver.source=FILE -Dpressroom.driver.out=DIR it also compiles
// itself into DIR while it waits, so later builds load the class instead of compiling it again.
//
// SPDX-License-Identifier: AGPL-3.0-or-later

import com.adobe.epubcheck.tool.EpubChecker;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;

public class EpubCheckDriver {
    private static final String STOP = "--pressroom-stop";
    private static FileLock held;  // SOCKET.lock, kept reachable until the JVM exits

    public static void main(String[] warm) throws IOException {
        // EPUBCheck prints its report's messages too; standard output is this driver's reply.
        PrintStream reply = System.out;
        System.setOut(new PrintStream(OutputStream.nullOutputStream()));
        // The socket is bound first, so that a build starting meanwhile finds this JVM (and
        // waits its turn) instead of starting another.
        String socket = System.getProperty("pressroom.serve");
        long keep = Long.getLong("pressroom.keep", 0L);
        ServerSocketChannel server = socket != null && keep > 0 ? bind(Paths.get(socket)) : null;
        new EpubChecker().run(new String[] {warm[0], "--json", warm[1]});
        removePrimer(Paths.get(warm[0]).toAbsolutePath(), Paths.get(warm[1]));
        compileSelf(System.getProperty("pressroom.driver.source"),
                    System.getProperty("pressroom.driver.out"));
        List<String> args = request(System.in);
        if (args != null && !args.isEmpty()) {
            reply.print("done " + new EpubChecker().run(args.toArray(new String[0])) + "\n");
        }
        reply.close();
        System.in.close();
        if (server != null) {
            serve(server, Paths.get(socket), keep * 1000L);
        }
        System.exit(0);
    }

    // One argument per line, ended by an empty line; null when the stream ends first.
    private static List<String> request(InputStream stream) throws IOException {
        BufferedReader in = new BufferedReader(
            new InputStreamReader(stream, StandardCharsets.UTF_8));
        List<String> args = new ArrayList<>();
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            if (line.isEmpty()) {
                return args;
            }
            args.add(line);
        }
        return null;
    }

    // The socket, bound; null when another JVM holds SOCKET.lock (it serves this socket) or
    // the socket cannot be made. The lock is held until this JVM exits.
    private static ServerSocketChannel bind(Path socket) {
        try {
            FileChannel lockChannel = FileChannel.open(
                socket.resolveSibling(socket.getFileName() + ".lock"),
                StandardOpenOption.CREATE, StandardOpenOption.WRITE);
            FileLock lock = lockChannel.tryLock();
            if (lock == null) {
                lockChannel.close();
                return null;
            }
            held = lock;
            Files.deleteIfExists(socket);  // left by a JVM that was killed
            ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            server.bind(UnixDomainSocketAddress.of(socket));
            return server;
        } catch (IOException | RuntimeException e) {
            return null;  // not kept: later builds start their own JVM
        }
    }

    private static void serve(ServerSocketChannel server, Path socket, long keepMillis)
            throws IOException {
        try (server; Selector selector = Selector.open()) {
            server.configureBlocking(false);
            server.register(selector, SelectionKey.OP_ACCEPT);
            boolean stop = answerWaiting(server);
            while (!stop && selector.select(keepMillis) > 0) {
                selector.selectedKeys().clear();
                stop = answerWaiting(server);
            }
            // Idle (or stopped): no new client can find the socket once it is gone; those
            // already queued on it are still answered.
            Files.deleteIfExists(socket);
            if (!stop) {
                answerWaiting(server);
            }
        }
    }

    // Answers every client queued on the socket; true when one asked the JVM to stop.
    private static boolean answerWaiting(ServerSocketChannel server) throws IOException {
        for (SocketChannel client = server.accept(); client != null; client = server.accept()) {
            try (SocketChannel open = client) {
                open.configureBlocking(true);
                List<String> args = request(Channels.newInputStream(open));
                if (args == null || args.isEmpty()) {
                    continue;  // the build stopped before its ebook was ready
                }
                if (args.size() == 1 && args.get(0).equals(STOP)) {
                    return true;
                }
                int status = new EpubChecker().run(args.toArray(new String[0]));
                Channels.newOutputStream(open).write(
                    ("done " + status + "\n").getBytes(StandardCharsets.UTF_8));
            } catch (IOException | RuntimeException e) {
                // this client went away, or its check failed: the next one is still answered
            }
        }
        return false;
    }

    // Best effort: a cache that cannot be written only means the next build compiles again.
    private static void compileSelf(String source, String out) {
        if (source == null || out == null) {
            return;
        }
        Path target = Paths.get(out);
        Path tmp = null;
        try {
            tmp = Files.createTempDirectory(target.getParent(), ".driver-");
            JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
            int status = javac == null ? 1 : javac.run(null, null, null, "-d", tmp.toString(),
                "-cp", System.getProperty("java.class.path"), source);
            if (status == 0) {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
                tmp = null;
            }
        } catch (IOException | RuntimeException e) {
            // another build got there first, or the cache is read-only
        } finally {
            removeQuietly(tmp);
        }
    }

    // The primer's two files, then its folder if that is now empty (the build made it for this
    // JVM, which may outlive the build).
    private static void removePrimer(Path book, Path report) {
        for (Path path : new Path[] {book, report, book.getParent()}) {
            try {
                Files.deleteIfExists(path);
            } catch (IOException | RuntimeException e) {
                // not ours to empty, or already gone
            }
        }
    }

    private static void removeQuietly(Path dir) {
        if (dir == null) {
            return;
        }
        try (var files = Files.list(dir)) {
            for (Path file : (Iterable<Path>) files::iterator) {
                Files.deleteIfExists(file);
            }
            Files.deleteIfExists(dir);
        } catch (IOException e) {
            // left for the next build's compile to replace
        }
    }
}
