// Pressroom's EPUBCheck runner. Nearly all of an EPUBCheck run is fixed start-up work (loading
// classes, compiling the RELAX NG and Schematron schemas), the same for a one-page ebook as for
// a long one. So the build starts this JVM first, and it checks a small ebook of its own
// (arguments: WARM.epub WARM.json) while the PDFs and the ebook render. Then it reads the real
// check's command line from standard input (one argument per line, ended by an empty line),
// runs it with the schemas already compiled, and exits with EPUBCheck's status. Standard input
// closed with no arguments means the build stopped: the JVM exits without checking anything.
//
// The first run is launched as a single source file (the JRE's jdk.compiler module compiles it
// in memory). With -Dpressroom.driver.source=FILE -Dpressroom.driver.out=DIR it also compiles
// itself into DIR while it waits, so later builds load the class instead of compiling it again.
//
// SPDX-License-Identifier: AGPL-3.0-or-later

import com.adobe.epubcheck.tool.EpubChecker;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;

public class EpubCheckDriver {
    public static void main(String[] warm) throws IOException {
        new EpubChecker().run(new String[] {warm[0], "--json", warm[1]});
        compileSelf(System.getProperty("pressroom.driver.source"),
                    System.getProperty("pressroom.driver.out"));
        BufferedReader in = new BufferedReader(
            new InputStreamReader(System.in, StandardCharsets.UTF_8));
        List<String> args = new ArrayList<>();
        for (String line = in.readLine(); line != null && !line.isEmpty(); line = in.readLine()) {
            args.add(line);
        }
        if (args.isEmpty()) {
            System.exit(3);
        }
        System.exit(new EpubChecker().run(args.toArray(new String[0])));
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
