using System.Text;
using IsolateGrains.Engine.FileSystem;
using IsolateGrains.Protocol;

namespace IsolateGrains.Engine.Boot;

/// <summary>
/// Boots the Mono runtime in a fresh instance of the original module, in the order the JavaScript
/// glue would: constructors, environment, runtime options, CoreLib, runtime start, then the guest
/// dispatcher's method handle and a mailbox. Everything else (the BCL, the guest runtime) is loaded
/// on demand from the virtual file system through <c>TRUSTED_PLATFORM_ASSEMBLIES</c>.
/// </summary>
internal static class RuntimeBooter
{
    /// <summary>The runtime options that keep Mono off the jiterpreter (it needs JavaScript to emit code).</summary>
    private static readonly string[] RuntimeOptions =
    [
        "--no-jiterpreter-traces-enabled",
        "--no-jiterpreter-interp-entry-enabled",
        "--no-jiterpreter-jit-call-enabled",
    ];

    /// <summary>Builds the read-only file system every sandbox of a host shares.</summary>
    public static VirtualFileSystem CreateFileSystem(WasmRuntimePack pack)
    {
        var fileSystem = new VirtualFileSystem();
        foreach (var file in pack.BclFiles)
        {
            fileSystem.AddHostFile("/bcl/" + Path.GetFileName(file), file);
        }
        foreach (var file in pack.GuestFiles)
        {
            fileSystem.AddHostFile("/app/" + Path.GetFileName(file), file);
        }
        return fileSystem;
    }

    /// <summary>Boots the runtime in <paramref name="sandbox"/> and points it at the guest dispatcher.</summary>
    public static void Boot(Sandbox sandbox, WasmRuntimePack pack)
    {
        var instance = sandbox.Instance;
        Func<string, InvalidOperationException> missing = name => new InvalidOperationException($"dotnet.native.wasm does not export '{name}'.");
        var callConstructors = instance.GetAction("__wasm_call_ctors") ?? throw missing("__wasm_call_ctors");
        var setEnvironment = instance.GetAction<int, int>("mono_wasm_setenv") ?? throw missing("mono_wasm_setenv");
        var parseOptions = instance.GetAction<int, int>("mono_wasm_parse_runtime_options") ?? throw missing("mono_wasm_parse_runtime_options");
        var addAssembly = instance.GetFunction<int, int, int, int>("mono_wasm_add_assembly") ?? throw missing("mono_wasm_add_assembly");
        var loadRuntime = instance.GetAction<int, int, int, int>("mono_wasm_load_runtime") ?? throw missing("mono_wasm_load_runtime");
        var loadAssembly = instance.GetFunction<int, int>("mono_wasm_assembly_load") ?? throw missing("mono_wasm_assembly_load");
        var findClass = instance.GetFunction<int, int, int, int>("mono_wasm_assembly_find_class") ?? throw missing("mono_wasm_assembly_find_class");
        var findMethod = instance.GetFunction<int, int, int, int>("mono_wasm_assembly_find_method") ?? throw missing("mono_wasm_assembly_find_method");

        sandbox.Enter(() =>
        {
            callConstructors();

            setEnvironment(CString(sandbox, "DOTNET_SYSTEM_GLOBALIZATION_INVARIANT"), CString(sandbox, "1"));
            setEnvironment(CString(sandbox, "TZ"), CString(sandbox, "UTC"));

            parseOptions(RuntimeOptions.Length, PointerArray(sandbox, RuntimeOptions));

            // Mono reads the buffer in place for the life of the runtime: it is never freed.
            var coreLib = File.ReadAllBytes(pack.CoreLibPath);
            var coreLibPointer = sandbox.Exports.Malloc(coreLib.Length);
            coreLib.CopyTo(sandbox.Span(coreLibPointer, coreLib.Length));
            addAssembly(CString(sandbox, "System.Private.CoreLib.dll"), coreLibPointer, coreLib.Length);

            var trustedAssemblies = string.Join(':', pack.BclFiles.Select(f => "/bcl/" + Path.GetFileName(f))
                .Where(f => !f.EndsWith("/System.Private.CoreLib.dll", StringComparison.Ordinal))
                .Concat(pack.GuestFiles.Select(f => "/app/" + Path.GetFileName(f))));
            var properties = new (string Key, string Value)[]
            {
                ("APP_CONTEXT_BASE_DIRECTORY", "/"),
                ("RUNTIME_IDENTIFIER", "browser-wasm"),
                ("System.Globalization.Invariant", "true"),
                ("TRUSTED_PLATFORM_ASSEMBLIES", trustedAssemblies),
            };
            loadRuntime(0, properties.Length,
                PointerArray(sandbox, properties.Select(p => p.Key).ToArray()),
                PointerArray(sandbox, properties.Select(p => p.Value).ToArray()));
            sandbox.Pump();

            var assembly = loadAssembly(CString(sandbox, WasmRuntimePack.GuestRuntimeAssemblyName));
            if (assembly == 0)
            {
                throw new SandboxFault($"The guest runtime assembly '{WasmRuntimePack.GuestRuntimeAssemblyName}' could not be loaded in the sandbox.");
            }
            var dispatcherType = typeof(Guest.GuestDispatcher);
            var klass = findClass(assembly, CString(sandbox, dispatcherType.Namespace!), CString(sandbox, dispatcherType.Name));
            var method = klass == 0 ? 0 : findMethod(klass, CString(sandbox, nameof(Guest.GuestDispatcher.Dispatch)), 1);
            if (method == 0)
            {
                throw new SandboxFault($"The guest dispatcher {dispatcherType.FullName}.Dispatch was not found in the sandbox.");
            }
            sandbox.DispatchMethod = method;

            var mailbox = sandbox.Exports.Malloc(Mailbox.Size);
            sandbox.Span(mailbox, Mailbox.Size).Clear();
            sandbox.MailboxAddress = mailbox;
            return 0;
        });
    }

    /// <summary>Copies a string into guest memory as a NUL-terminated UTF-8 string (never freed: boot-time only).</summary>
    private static int CString(Sandbox sandbox, string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value + "\0");
        var pointer = sandbox.Exports.Malloc(bytes.Length);
        bytes.CopyTo(sandbox.Span(pointer, bytes.Length));
        return pointer;
    }

    /// <summary>Copies an array of strings into guest memory as a <c>char*[]</c>.</summary>
    private static int PointerArray(Sandbox sandbox, string[] values)
    {
        var pointers = values.Select(v => CString(sandbox, v)).ToArray();
        var array = sandbox.Exports.Malloc(Math.Max(4, pointers.Length * 4));
        for (var i = 0; i < pointers.Length; i++)
        {
            sandbox.Exports.Memory.WriteInt32(array + i * 4, pointers[i]);
        }
        return array;
    }
}
