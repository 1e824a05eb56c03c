using System.Buffers;
using System.Reflection;
using IsolateGrains.Protocol;
using MessagePack;

namespace IsolateGrains.Guest;

/// <summary>
/// Runs a delegate the host sent. The method is named by a 64-bit key; the first time a sandbox sees a
/// key the host adds the descriptor (assembly, type, metadata token, module version id), the method is
/// resolved and a <see cref="MethodRunner"/> cached; later calls skip straight to it. The target (a
/// lambda's closure) is deserialized field by field.
/// Request: <c>[InvokeDelegate, key, [assembly, type, token, moduleVersionId] | nil, target | nil]</c>.
/// </summary>
internal static class DelegateInvoker
{
    private static readonly Dictionary<ulong, MethodRunner> s_runners = new();

    /// <summary>Handles one request (the reader is positioned after the kind).</summary>
    public static void Invoke(ref MessagePackReader reader, ArrayBufferWriter<byte> output)
    {
        var key = reader.ReadUInt64();
        if (!s_runners.TryGetValue(key, out var runner))
        {
            if (reader.TryReadNil())
            {
                Replies.WriteBadRequest(output, $"The sandbox does not know method key {key:X16} and no descriptor came with it.");
                return;
            }
            runner = Resolve(ref reader, output);
            if (runner is null)
            {
                return;
            }
            s_runners[key] = runner;
        }
        else
        {
            reader.Skip();
        }

        object? target = null;
        if (runner.NeedsTarget)
        {
            if (reader.TryReadNil())
            {
                Replies.WriteBadRequest(output, $"The delegate's target of type '{runner.DeclaringType.FullName}' was missing.");
                return;
            }
            target = ClosureSerializer.Deserialize(ref reader, runner.DeclaringType);
        }

        try
        {
            runner.Run(target, output);
        }
        catch (Exception e)
        {
            output.ResetWrittenCount();
            Replies.WriteException(output, e);
        }
    }

    private static MethodRunner? Resolve(ref MessagePackReader reader, ArrayBufferWriter<byte> output)
    {
        if (reader.ReadArrayHeader() != 4)
        {
            Replies.WriteBadRequest(output, "The method descriptor was malformed.");
            return null;
        }
        var assemblyName = reader.ReadString() ?? "";
        var typeName = reader.ReadString() ?? "";
        var token = reader.ReadInt32();
        var moduleVersionId = reader.ReadString() ?? "";

        Assembly assembly;
        try
        {
            // Loading the assembly first makes a missing assembly a FileNotFoundException that names it.
            assembly = Assembly.Load(new AssemblyName(assemblyName));
        }
        catch (FileNotFoundException)
        {
            Replies.WriteException(output, new FileNotFoundException(
                $"Could not load assembly '{assemblyName}' in the sandbox: no assembly loader of the host provides it " +
                "(see IsolatedRuntimeHost.WithBinDirectoryAssemblyLoader and WithAssemblyLoader).", assemblyName));
            return null;
        }
        var type = assembly.GetType(typeName, throwOnError: true)!;
        if (type.Module.ModuleVersionId.ToString() != moduleVersionId)
        {
            Replies.WriteBadRequest(output,
                $"The sandbox has a different build of assembly '{type.Assembly.FullName}' than the host (module version {type.Module.ModuleVersionId}, host {moduleVersionId}). " +
                "Methods of the .NET libraries themselves cannot be sent (the sandbox runs its own build of them): wrap the call in a lambda.");
            return null;
        }
        const BindingFlags All = BindingFlags.DeclaredOnly | BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic;
        var method = type.GetMethods(All).FirstOrDefault(m => m.MetadataToken == token);
        if (method is null || method.GetParameters().Length != 0)
        {
            Replies.WriteBadRequest(output, $"Method token 0x{token:X8} does not name a parameterless method of type '{type.FullName}'.");
            return null;
        }
        return MethodRunner.Create(method);
    }
}
